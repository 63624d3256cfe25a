import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class DataDirBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`another CyNode process (pid ${pid}) is using the data directory ${dataDir}; stop it first (two processes on one PGlite database would corrupt it)`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One process at a time on a PGlite data directory, like PostgreSQL's postmaster.pid: the file
 * names the holder; a file whose process is gone (it was killed) is taken over at once, so a
 * restart after `kill -9` is not delayed. Resolves to the release function.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, 'cynode.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        // Only our own file: never remove a lock another process took over.
        const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        if (holder === process.pid) await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) throw new DataDirBusyError(dataDir, holder);
    // Stale: its process is gone. Remove it and try again (another starter may win the race).
    await rm(path, { force: true });
  }
  throw new Error(`could not lock the data directory ${dataDir}`);
}
