// The master key in a real OS keychain. Needs a Secret Service, so each case runs a child process
// under `dbus-run-session` with an unlocked `gnome-keyring-daemon` (Debian: `apt-get install dbus
// gnome-keyring`; .ci/run installs them). Missing tools fail the test with that message.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
const PROBE = join(ROOT, 'tests/integration/keychain-probe.ts');

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async (name: string) => {
  const d = await mkdtemp(join(tmpdir(), `cynode-${name}-`));
  dirs.push(d);
  return d;
};

async function requireTools(): Promise<void> {
  for (const tool of ['dbus-run-session', 'gnome-keyring-daemon']) {
    const found = await run('sh', ['-c', `command -v ${tool}`]).then(
      () => true,
      () => false,
    );
    if (!found) throw new Error(`${tool} is missing: the keychain test needs a real Secret Service (apt-get install dbus gnome-keyring; .ci/run installs them)`);
  }
}

interface Probe {
  first: { masterKey?: string; source: string; reason?: string };
  second: { masterKey?: string; source: string };
  stored: string | null;
  storeError: string | null;
  keyFile: boolean;
  marker: boolean;
}

/** The probe under a private session bus with a fresh, unlocked login keyring in its own HOME. */
async function probeWithKeyring(dataDir: string): Promise<Probe> {
  const home = await tempDir('keyring-home');
  const script = [
    'set -e',
    // A fresh login keyring, created and unlocked with this password; only the Secret Service part.
    'printf %s keyring-test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null',
    'node --import tsx "$PROBE" "$DATA_DIR"',
  ].join('\n');
  const { stdout } = await run('dbus-run-session', ['--', 'sh', '-c', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: home, XDG_DATA_HOME: join(home, 'data'), PROBE, DATA_DIR: dataDir },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Probe;
}

describe('master key in the OS keychain (needs dbus-run-session + gnome-keyring: a real Secret Service)', () => {
  it('a new data folder: the key is stored in the keychain, read back on the next start, and no key file is written', async () => {
    await requireTools();
    const dataDir = await tempDir('keychain-data');
    const p = await probeWithKeyring(dataDir);
    expect(p.storeError).toBeNull();
    expect(p.first.source).toBe('keychain');
    expect(Buffer.from(p.first.masterKey!, 'base64')).toHaveLength(32);
    expect(p.stored).toBe(p.first.masterKey);
    expect(p.second).toEqual({ masterKey: p.first.masterKey, source: 'keychain' });
    expect(p.keyFile).toBe(false);
    expect(p.marker).toBe(true);
  });

  it('no keychain answering (no session bus at all): the key file is used instead', async () => {
    const dataDir = await tempDir('nokeychain-data');
    const { stdout } = await run('node', ['--import', 'tsx', PROBE, dataDir], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: dataDir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dataDir, 'no-bus')}` },
      timeout: 60_000,
    });
    const p = JSON.parse(stdout.trim().split('\n').at(-1)!) as Probe;
    expect(p.first).toMatchObject({ source: 'file' });
    expect(p.first.masterKey).toBeUndefined();
    expect(p.first.reason).toMatch(/no keychain answered/);
    expect(p.marker).toBe(false);
    expect(p.storeError).not.toBeNull();
  });
});
