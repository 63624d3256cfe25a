// Run by tests/integration/keychain.test.ts in a child process (inside `dbus-run-session` with a
// gnome-keyring Secret Service, or with no keychain at all): asks main/shell/keychain.ts for the
// master key of a data folder twice and reports what the real OS keychain holds, as one JSON line.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { AsyncEntry } from '@napi-rs/keyring';
import { KEYCHAIN_SERVICE, desktopMasterKey, keychainAccount } from '../../main/shell/keychain';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: keychain-probe.ts <data dir>');

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

const first = await desktopMasterKey(dataDir);
const second = await desktopMasterKey(dataDir);
let stored: string | null = null;
let storeError: string | null = null;
try {
  stored = (await new AsyncEntry(KEYCHAIN_SERVICE, keychainAccount(dataDir)).getPassword()) ?? null;
} catch (err) {
  storeError = (err as Error).message;
}
process.stdout.write(
  JSON.stringify({
    first,
    second,
    stored,
    storeError,
    keyFile: await exists(join(dataDir, 'master.key')),
    marker: await exists(join(dataDir, 'master.key.keychain')),
  }) + '\n',
);
