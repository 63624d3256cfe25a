import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_CAP_BYTES } from '../../node-manager/contract/worker-api';
import { DockerRunner, LABEL_INSTANCE, LABEL_JOB, LABEL_MANAGED, LABEL_TASK } from '../../node-manager/sandbox/docker-runner';
import type { SandboxRunSpec } from '../../node-manager/sandbox/runner';
import { SANDBOX_IMAGE, docker, ensureSandboxImage, instanceContainers, jobContainers, runRaw, tempDir, waitForRunningContainer } from '../support/docker';

describe('DockerRunner on the real engine', () => {
  const instanceId = `test-${randomUUID()}`;
  let jobsDir: string;
  let runner: DockerRunner;

  const spec = (command: string[], more: Partial<SandboxRunSpec> = {}): SandboxRunSpec => ({
    taskId: `task-${randomUUID()}`,
    jobId: `job-${randomUUID()}`,
    image: SANDBOX_IMAGE,
    command,
    env: {},
    timeoutSeconds: 60,
    files: {},
    ...more,
  });
  const sh = (script: string, more: Partial<SandboxRunSpec> = {}) => spec(['sh', '-c', script], more);

  beforeAll(async () => {
    await ensureSandboxImage();
    jobsDir = await tempDir('cynode-jobs-');
    runner = new DockerRunner({ instanceId, jobsDir, image: SANDBOX_IMAGE });
  });

  // Whatever a job did, nothing of it may outlive its run: no container, no job directory.
  afterEach(async () => {
    // Containers and job directories are removed right after each answer.
    await runner.settled();
    expect(await instanceContainers(instanceId)).toEqual([]);
    expect(await readdir(jobsDir)).toEqual([]);
  });

  afterAll(async () => {
    await rm(jobsDir, { recursive: true, force: true });
  });

  it('runs echo hello to completion', async () => {
    const out = await runner.run(spec(['echo', 'hello']));
    expect(out).toMatchObject({ status: 'completed', exitCode: 0, stdout: 'hello\n', stderr: '', truncated: { stdout: false, stderr: false } });
    expect(out.endedAt.getTime()).toBeGreaterThanOrEqual(out.startedAt.getTime());
  });

  it('passes a non-zero exit code through as failed', async () => {
    const out = await runner.run(sh('echo about to fail >&2; exit 7'));
    expect(out).toMatchObject({ status: 'failed', exitCode: 7, stderr: 'about to fail\n' });
  });

  describe('network', () => {
    let host: Server;
    let port: number;
    beforeAll(async () => {
      host = createServer((_req, res) => res.end('host-only-page'));
      await new Promise<void>((r) => host.listen(0, '0.0.0.0', r));
      port = (host.address() as { port: number }).port;
    });
    afterAll(async () => {
      await new Promise((r) => host.close(r));
    });

    it('has no interface but loopback', async () => {
      const out = await runner.run(sh('ip -o link | cut -d: -f2 | tr -d " "'));
      expect(out.status).toBe('completed');
      expect(out.stdout.trim().split('\n')).toEqual(['lo']);
    });

    it('cannot reach a server listening on the host, on loopback or the LAN address', async () => {
      const lan = Object.values(networkInterfaces())
        .flat()
        .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
      const targets = ['127.0.0.1', ...(lan ? [lan] : [])];
      // busybox 1.35's `wget -T` crashes; timeout(1) bounds the attempt instead.
      const probe = targets.map((t) => `timeout 5 wget -q -O - http://${t}:${port}/ 2>/dev/null; echo " ${t} rc=$?"`).join('; ');
      const reached = (output: string, t: string) => new RegExp(`host-only-page ${t.replace(/\./g, '\\.')} rc=0`).test(output);

      // Positive control: with the host's network the same probe gets the page from every target,
      // so its failure in the sandbox is the isolation, not a broken probe.
      const control = await runRaw(['sh', '-c', probe], { NetworkMode: 'host' });
      for (const t of targets) expect(reached(control.output, t), control.output).toBe(true);

      const out = await runner.run(sh(probe));
      expect(out.status).toBe('completed');
      expect(out.stdout).not.toContain('host-only-page');
      for (const t of targets) expect(out.stdout).toMatch(new RegExp(` ${t.replace(/\./g, '\\.')} rc=[1-9]`));
    });
  });

  it('sets the reserved variables, which the caller cannot forge, and nothing from the host', async () => {
    process.env.CYNODE_TEST_SECRET = 's3cret-value';
    try {
      const s = spec(['env'], { env: { CYNODE_TASK_ID: 'forged-task', CYNODE_JOB_ID: 'forged-job', CYNODE_PROMPT: 'allowed', GREETING: 'hi there' } });
      const out = await runner.run(s);
      expect(out.status).toBe('completed');
      const env = Object.fromEntries(
        out.stdout
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({ CYNODE_TASK_ID: s.taskId, CYNODE_JOB_ID: s.jobId, CYNODE_WORKSPACE_DIR: '/workspace', CYNODE_PROMPT: 'allowed', GREETING: 'hi there' });
      expect(out.stdout).not.toContain('forged');
      expect(out.stdout).not.toContain('s3cret-value');
      expect(env).not.toHaveProperty('CYNODE_TEST_SECRET');
    } finally {
      delete process.env.CYNODE_TEST_SECRET;
    }
  });

  it('runs as nobody in a writable /workspace', async () => {
    const out = await runner.run(sh('pwd; id -u; echo data > note.txt && cat /workspace/note.txt'));
    expect(out).toMatchObject({ status: 'completed', stdout: '/workspace\n65534\ndata\n' });
  });

  it('provides the job files read-only in /job, and runs a script from there', async () => {
    const files = { 'script.sh': 'echo "script ran for $CYNODE_JOB_ID"\n' };
    const s = sh('sh /job/script.sh; grep " /job " /proc/mounts | cut -d" " -f4 | cut -d, -f1', { files });
    const out = await runner.run(s);
    expect(out).toMatchObject({ status: 'completed', stdout: `script ran for ${s.jobId}\nro\n` });
  });

  it('kills a job at its timeout and answers timeout without an exit code', async () => {
    const s = spec(['sleep', '600'], { timeoutSeconds: 2 });
    const out = await runner.run(s);
    expect(out.status).toBe('timeout');
    expect(out.exitCode).toBeUndefined();
    await runner.settled();
    expect(await jobContainers(s.jobId)).toEqual([]);
  });

  it('stops a running job on request: canceled, container gone', async () => {
    const s = spec(['sleep', '600'], { timeoutSeconds: 600 });
    const result = runner.run(s);
    await waitForRunningContainer(s.jobId);
    expect(await runner.stop(s.jobId)).toBe(true);
    const out = await result;
    expect(out.status).toBe('canceled');
    expect(out.exitCode).toBeUndefined();
    await runner.settled();
    expect(await jobContainers(s.jobId)).toEqual([]);
    expect(await runner.stop(s.jobId)).toBe(false);
  });

  it('stops every running job with stopAll', async () => {
    const a = spec(['sleep', '600']);
    const b = spec(['sleep', '600']);
    const results = [runner.run(a), runner.run(b)];
    await Promise.all([waitForRunningContainer(a.jobId), waitForRunningContainer(b.jobId)]);
    await runner.stopAll();
    expect((await Promise.all(results)).map((o) => o.status)).toEqual(['canceled', 'canceled']);
  });

  it('caps an output flood at 256 KiB with the flag set', async () => {
    const out = await runner.run(sh('yes 0123456789 | head -c 2000000'));
    expect(out.status).toBe('completed');
    expect(Buffer.byteLength(out.stdout)).toBe(OUTPUT_CAP_BYTES);
    expect(out.truncated).toEqual({ stdout: true, stderr: false });
    expect(out.stdout).toBe('0123456789\n'.repeat(Math.ceil(OUTPUT_CAP_BYTES / 11)).slice(0, OUTPUT_CAP_BYTES));
  });

  it('cuts a multi-byte flood back to a character boundary', async () => {
    // "é\n" is 3 bytes, so the cap (not a multiple of 3) falls inside an "é".
    expect(OUTPUT_CAP_BYTES % 3).not.toBe(0);
    const out = await runner.run(sh('yes é | head -c 1000000'));
    expect(out.truncated.stdout).toBe(true);
    const bytes = Buffer.byteLength(out.stdout);
    expect(bytes).toBeLessThanOrEqual(OUTPUT_CAP_BYTES);
    expect(bytes).toBeGreaterThan(OUTPUT_CAP_BYTES - 4);
    expect(out.stdout).not.toContain('\uFFFD');
    expect(out.stdout).toMatch(/^(é\n)*é?$/);
  });

  it('captures stderr separately, with its own cap', async () => {
    const out = await runner.run(sh('echo to-stdout; yes to-stderr | head -c 300000 >&2'));
    expect(out.stdout).toBe('to-stdout\n');
    expect(out.stderr.startsWith('to-stderr\nto-stderr\n')).toBe(true);
    expect(Buffer.byteLength(out.stderr)).toBe(OUTPUT_CAP_BYTES);
    expect(out.truncated).toEqual({ stdout: false, stderr: true });
  });

  it('holds a fork bomb to the pids limit, and the run still ends at its timeout', async () => {
    // The inner shell forks sleeps until the limit refuses, noting how many it got without forking;
    // the outer shell then becomes a sleep (exec needs no new process) so the timeout has to end it.
    const script =
      'sh -c "n=0; for i in \\$(seq 1 1000); do sleep 30 & n=\\$((n+1)); echo \\$n > /workspace/count; done"; ' +
      'read n < /workspace/count; echo spawned=$n; exec sleep 600';
    const out = await runner.run(sh(script, { timeoutSeconds: 5 }));
    expect(out.status).toBe('timeout');
    expect(out.stderr).toContain("can't fork");
    const spawned = Number(/spawned=(\d+)/.exec(out.stdout)?.[1]);
    // Default limit 256 processes: both shells and the sleeps share it.
    expect(spawned).toBeLessThan(256);
    expect(spawned).toBeGreaterThan(200);
  });

  it('reports a missing image as failed with exit code -1 and the reason', async () => {
    const out = await runner.run(spec(['true'], { image: 'cynode-sandbox:no-such-tag' }));
    expect(out).toMatchObject({ status: 'failed', exitCode: -1, stdout: '' });
    expect(out.stderr).toContain('cynode-sandbox:no-such-tag is not present on this node');
  });

  it('reports a command that does not exist as a failure to start', async () => {
    const out = await runner.run(spec(['no-such-command']));
    expect(out).toMatchObject({ status: 'failed', exitCode: -1 });
    expect(out.stderr).toContain('no-such-command');
  });

  it('refuses job ids and file names that would escape the job directory', async () => {
    expect(await runner.run(spec(['true'], { jobId: '..' }))).toMatchObject({ status: 'failed', exitCode: -1 });
    expect(await runner.run(spec(['true'], { files: { '..': 'x' } }))).toMatchObject({ status: 'failed', exitCode: -1 });
  });

  it('reaps containers a previous run of this instance left behind, and only those', async () => {
    const leftover = async (instance: string) => {
      const c = await docker.createContainer({
        Image: SANDBOX_IMAGE,
        Cmd: ['sleep', '600'],
        Labels: { [LABEL_MANAGED]: 'true', [LABEL_INSTANCE]: instance, [LABEL_TASK]: 'crashed-task', [LABEL_JOB]: `crashed-${randomUUID()}` },
        HostConfig: { NetworkMode: 'none' },
      });
      await c.start();
      return c;
    };
    const ours = await leftover(instanceId);
    const theirs = await leftover(`other-${randomUUID()}`);
    try {
      expect(await runner.reapOrphans()).toBe(1);
      await expect(ours.inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect((await theirs.inspect()).State.Running).toBe(true);
    } finally {
      await theirs.remove({ force: true });
      await ours.remove({ force: true }).catch(() => {});
    }
  });

  it('check() is null when usable and names what is missing otherwise', async () => {
    expect(await runner.check()).toBeNull();
    const noImage = new DockerRunner({ instanceId, jobsDir, image: 'cynode-sandbox:no-such-tag' });
    expect(await noImage.check()).toBe('sandbox image cynode-sandbox:no-such-tag is missing; run build/sandbox-image.sh');
    const noEngine = new DockerRunner({ instanceId, jobsDir, docker: new Dockerode({ socketPath: join(jobsDir, 'no-engine.sock') }) });
    expect(await noEngine.check()).toBe(`no container engine at ${join(jobsDir, 'no-engine.sock')}`);
    expect(await noEngine.info()).toBeNull();
    expect(await runner.info()).toMatchObject({ runtime: expect.stringMatching(/^(docker|podman)$/), version: expect.any(String) });
  });
});
