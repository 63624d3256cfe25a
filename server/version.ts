/** The version CyNode reports (OpenAPI documents, MCP server info, the CLI, the desktop app). */
export const VERSION = '0.1.0';
