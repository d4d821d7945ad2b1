/**
 * A Redis the operator configured and that does not answer is never replaced by another: `triage run`, the
 * API and the worker each exit with the "no Redis" code (3) naming the address they tried, and no private
 * redis-server is started; a configuration that cannot be right (two kinds, a Cluster prefix without a hash
 * tag) stops every process before it connects, naming the setting.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@triage/queue';
import { generateSampleSet } from '@triage/images';

const here = dirname(fileURLToPath(import.meta.url));
const MAINS = {
  cli: resolve(here, '../bin/triage.js'),
  api: resolve(here, '../../api/dist/server.js'),
  worker: resolve(here, '../../worker/dist/main.js'),
};

interface Result {
  code: number | null;
  output: string;
}

/** Runs a process to its end (bounded: a process that waits for a dead Redis forever fails the test). */
function run(main: string, args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [main, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${main} did not exit within 60 s:\n${output}`));
    }, 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

let dir: string;
let photos: string;
let deadPorts: number[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'triage-no-stand-in-'));
  photos = join(dir, 'photos');
  await generateSampleSet(photos, { count: 6, width: 160, height: 120 });
  // Ports nothing listens on (free a moment ago; nothing in these tests binds them).
  deadPorts = [await freePort(), await freePort(), await freePort()];
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a configured Redis that does not answer', () => {
  const base = () => ({ STORAGE_DIR: join(dir, 'storage'), LOG_LEVEL: 'info' });
  const configs = (): { what: string; env: Record<string, string>; names: string }[] => [
    {
      what: 'REDIS_URL',
      env: { REDIS_URL: `redis://user:s3cret@127.0.0.1:${deadPorts[0]}` },
      names: `redis://user:***@127.0.0.1:${deadPorts[0]}`,
    },
    {
      what: 'REDIS_SENTINELS',
      env: { REDIS_SENTINELS: deadPorts.map((p) => `127.0.0.1:${p}`).join(','), REDIS_SENTINEL_NAME: 'triage' },
      names: `master "triage" of Sentinels ${deadPorts.map((p) => `127.0.0.1:${p}`).join(',')}`,
    },
    {
      what: 'REDIS_CLUSTER_NODES',
      env: { REDIS_CLUSTER_NODES: deadPorts.map((p) => `127.0.0.1:${p}`).join(','), TRIAGE_PREFIX: '{triage}' },
      names: `Redis Cluster ${deadPorts.map((p) => `127.0.0.1:${p}`).join(',')}`,
    },
  ];

  it('triage run exits 3 naming it, and starts no redis-server in its place', async () => {
    for (const c of configs()) {
      const r = await run(MAINS.cli, ['run', photos, '--json'], { ...base(), ...c.env });
      expect(r.code, `${c.what}: ${r.output}`).toBe(3);
      expect(r.output).toContain(`No Redis answers at ${c.names}`);
      expect(r.output).toContain(`configured by ${c.what}`);
      expect(r.output).not.toContain('s3cret');
      expect(r.output).not.toMatch(/"selected"|started one/);
    }
  }, 240_000);

  it('the worker and the API exit 3 naming it', async () => {
    for (const c of configs()) {
      for (const main of [MAINS.worker, MAINS.api]) {
        const r = await run(main, [], { ...base(), ...c.env, PORT: '0' });
        expect(r.code, `${main} with ${c.what}: ${r.output}`).toBe(3);
        expect(r.output).toContain(`No Redis answers at ${c.names}`.replace(/"/g, '\\"'));
        expect(r.output).not.toContain('s3cret');
      }
    }
  }, 240_000);
});

describe('a configuration that cannot be right', () => {
  it('stops every process before connecting, naming the setting', async () => {
    const cluster = { REDIS_CLUSTER_NODES: `127.0.0.1:${deadPorts[0]}`, TRIAGE_PREFIX: 'triage' };
    const both = {
      REDIS_CLUSTER_NODES: `127.0.0.1:${deadPorts[0]}`,
      REDIS_SENTINELS: `127.0.0.1:${deadPorts[1]}`,
      REDIS_SENTINEL_NAME: 'm',
      TRIAGE_PREFIX: '{t}',
    };
    for (const [env, message] of [
      [cluster, /TRIAGE_PREFIX \\?"triage\\?" has no hash tag/],
      [both, /REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set/],
    ] as const) {
      const cli = await run(MAINS.cli, ['run', photos], { STORAGE_DIR: join(dir, 'storage'), ...env });
      expect(cli.code).toBe(2);
      expect(cli.output).toMatch(message);
      for (const main of [MAINS.worker, MAINS.api]) {
        const r = await run(main, [], { STORAGE_DIR: join(dir, 'storage'), ...env });
        expect(r.code, r.output).not.toBe(0);
        expect(r.output).toMatch(message);
      }
    }
  }, 120_000);
});
