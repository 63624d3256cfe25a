/** What tools-mcp.ts runs in process, loaded through Vite (the server's sources use import.meta.glob). */
export { identityServices, startCynode } from '../../server/app';
export { loadConfig } from '../../server/config/config';
export { TaskService } from '../../server/tasks/service';
