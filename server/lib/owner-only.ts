import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Makes a directory tree its owner's alone: directories 0700, files 0600. Symbolic links are left
 * as they are (chmod would follow them out of the tree), and an entry that vanishes on the way
 * (a database's temporary file) is no error.
 */
export async function makeOwnerOnly(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  const entries = await readdir(dir, { withFileTypes: true });
  await Promise.all(
    entries.map(async (entry) => {
      const path = join(dir, entry.name);
      try {
        if (entry.isDirectory()) await makeOwnerOnly(path);
        else if (entry.isFile()) await chmod(path, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }),
  );
}
