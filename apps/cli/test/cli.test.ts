/**
 * The `triage` command as a user runs it: a folder in, a JSON summary and a folder of links out, through the
 * real queue and a worker process it starts itself.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleSet, type SampleFile } from '@triage/images';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/triage.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function triage(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

const sha = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

let dir: string;
let photos: string;
let files: SampleFile[];
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'triage-cli-'));
  photos = join(dir, 'photos');
  files = await generateSampleSet(photos, { count: 40 });
  env = {
    STORAGE_DIR: join(dir, 'storage'),
    TRIAGE_PREFIX: `test-cli-${process.pid}`,
    // No Redis configured, and nothing listens on port 1 where one is looked for: the command must start its
    // own redis-server for the run.
    REDIS_LOCAL_URL: 'redis://127.0.0.1:1',
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('triage run', () => {
  it('triages a folder end to end and prints one JSON summary last; the originals are untouched', async () => {
    const before = await Promise.all(files.map((f) => sha(f.path)));
    const out = join(dir, 'picks');
    await writeFile(join(dir, 'marker'), ''); // the out folder may hold other files already
    const r = await triage(['run', photos, '--top', '10%', '--out', out, '--grids', '--json'], env);
    expect(r.stderr).not.toMatch(/Error|at .*\.js/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]!) as {
      total_input: number;
      pass1_survivors: number;
      final_selected: number;
      failed: number;
      selected: string[];
      failures: { path: string; reason: string }[];
    };
    expect(summary.total_input).toBe(40);
    expect(summary.failed).toBe(files.filter((f) => f.kind === 'unreadable').length);
    expect(summary.final_selected).toBe(4);
    expect(summary.selected).toHaveLength(4);
    expect(summary.pass1_survivors).toBeGreaterThanOrEqual(4);
    for (const path of summary.selected) expect(files.map((f) => f.path)).toContain(path);
    for (const f of summary.failures) expect(f.reason.length).toBeGreaterThan(5);

    // --out: links to the picked originals, and the grids that were sent.
    const entries = (await readdir(out)).sort();
    const links = entries.filter((e) => e !== 'grids');
    expect(links).toHaveLength(4);
    for (const name of links) {
      expect((await lstat(join(out, name))).isSymbolicLink()).toBe(true);
      expect(summary.selected).toContain(await readlink(join(out, name)));
    }
    const grids = await readdir(join(out, 'grids'));
    expect(grids.some((g) => g.startsWith('coarse-'))).toBe(true);
    expect(grids.some((g) => g.startsWith('fine-'))).toBe(true);

    // Originals never moved or changed, and the run's storage links are gone.
    expect(await Promise.all(files.map((f) => sha(f.path)))).toEqual(before);
    const left = await readdir(join(dir, 'storage', 'photos', 'triage', 'local')).catch(() => []);
    for (const job of left)
      expect(await readdir(join(dir, 'storage', 'photos', 'triage', 'local', job, 'grids')).catch(() => [])).toEqual(
        [],
      );
  });

  it('resolves name clashes in --out instead of overwriting', async () => {
    const out = join(dir, 'clash');
    const first = await triage(['run', photos, '--top', '3', '--out', out, '--json'], env);
    expect(first.code).toBe(0);
    const second = await triage(['run', photos, '--top', '3', '--out', out, '--json'], env);
    expect(second.code).toBe(0);
    const names = await readdir(out);
    expect(names).toHaveLength(6);
    expect(names.filter((n) => / \(2\)\./.test(n))).toHaveLength(3);
  });

  it('refuses a bad target before doing anything, with a clear message', async () => {
    const r = await triage(['run', photos, '--top', '150%'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Invalid target "150%"/);
    const abc = await triage(['run', photos, '--top', 'abc'], env);
    expect(abc.stderr).toMatch(/use a share such as "10%" or a count/);
    const many = await triage(['run', photos, '--top', '41'], env);
    expect(many.stderr).toMatch(/cannot keep 41 of 40 photos/);
  });

  it('says how to get Redis when none answers and none is installed', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'triage-nopath-'));
    const r = await triage(['run', photos], { ...env, PATH: empty });
    await rm(empty, { recursive: true, force: true });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/No Redis answers at redis:\/\/127\.0\.0\.1:1/);
    expect(r.stderr).toMatch(/apt-get install -y redis-server/);
  });

  it('names a missing folder', async () => {
    const r = await triage(['run', join(dir, 'nope')], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a folder/);
  });

  it('Ctrl-C cancels the triage and exits 130 (interrupted), not 2 (bad input)', async () => {
    // Slow reads (in the worker it starts) keep the job running when the interrupt arrives.
    const child = spawn(process.execPath, [BIN, 'run', photos], {
      env: { PATH: process.env.PATH ?? '', ...env, STORAGE_READ_LATENCY_MS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await new Promise<void>((resolvePromise, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/selection: grid/.test(stderr)) resolvePromise();
      });
      void exited.then((code) => reject(new Error(`exited (${code}) before showing progress:\n${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted: cancelling the triage/);
    expect(stderr).toMatch(/triage: interrupted: the triage was cancelled/);
  });

  it('on a 40-column terminal the live line never wraps, and its final state is drawn once', async () => {
    // A real pseudo-terminal (util-linux `script`), 40 columns wide.
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = `stty cols 40 rows 24; exec ${q(process.execPath)} ${q(BIN)} run ${q(photos)} --top 10%`;
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
    const progress = screen
      // eslint-disable-next-line no-control-regex -- the live line redraws with the erase-line escape (ESC [2K)
      .split(/\r\x1b\[2K|\r\n|\r|\n/)
      .filter((line) => /^(\[[#.]+\] +)?\d+% {2}/.test(line.trimStart()));
    expect(progress.length).toBeGreaterThan(1);
    for (const line of progress) expect([...line].length, line).toBeLessThan(40);
    expect(progress.filter((line) => /100% {2}completed/.test(line))).toHaveLength(1);
    expect(screen).toMatch(/Triage complete in/);
  });
});
