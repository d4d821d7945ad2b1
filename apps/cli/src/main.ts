/** The `triage` command. */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TriageInputError } from '@triage/core';
import { generateSampleSet } from '@triage/images';
import {
  API_NODE_ARGS,
  readSharedSettings,
  RedisUnavailableError,
  SettingsError,
  WORKER_NODE_ARGS,
  workerEnv,
} from '@triage/queue';
import { CliError, InterruptedError, runTriage, TriageEndedError, type RunOptions, type RunSummary } from './run.js';
import { ensureRedis, NoRedisError, REDIS_LOCAL_URL, startedNotice } from './redis-server.js';
import { spawn } from 'node:child_process';
import { APP_MAINS } from './run.js';

const USAGE = `Usage:
  triage run <folder> [--top 10%] [--criteria standout|quality|"free text"] [--passes 1|2]
                      [--out <dir>] [--grids] [--json]
  triage demo         generate a sample set of 60 photos with known flaws and triage it
  triage start        run the API and a worker until Ctrl-C (starts Redis if none answers)
  triage help

Options of run:
  --top, -t       how many to keep: a share ("10%") or a count ("25"). Default 10%
  --criteria, -c  standout (eye-catching), quality (technical), or your own words. Default standout
  --passes, -p    2 (coarse, then fine) or 1 (coarse only). Default 2
  --out, -o       write links to the picked originals into this folder (originals are never changed)
  --grids         also save the grids sent to the vision provider (into <out>/grids)
  --json          print one JSON summary on stdout, last

Settings come from the environment (REDIS_URL or REDIS_CLUSTER_NODES or REDIS_SENTINELS, STORAGE_DIR,
TRIAGE_PREFIX, GRID_*): see the README. With no Redis configured, run, demo and start use the one at
REDIS_LOCAL_URL (default ${REDIS_LOCAL_URL.default}), or start a private redis-server when none answers there.
Exit codes: 0 done, 2 bad input, 3 no Redis, 130 interrupted (Ctrl-C), 1 anything else.`;

function runOptions(argv: string[]): RunOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      top: { type: 'string', short: 't', default: '10%' },
      criteria: { type: 'string', short: 'c', default: 'standout' },
      passes: { type: 'string', short: 'p', default: '2' },
      out: { type: 'string', short: 'o' },
      grids: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new CliError('run needs exactly one folder of photos');
  const passes = Number(values.passes);
  if (passes !== 1 && passes !== 2) throw new CliError('--passes must be 1 or 2');
  return {
    folder: positionals[0]!,
    top: values.top,
    criteria: values.criteria,
    passes,
    grids: values.grids,
    json: values.json,
    ...(values.out !== undefined && { out: values.out }),
  };
}

function printSummary(summary: RunSummary, options: RunOptions): void {
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({
        total_input: summary.total_input,
        pass1_survivors: summary.pass1_survivors,
        final_selected: summary.final_selected,
        failed: summary.failed,
        selected: summary.selected,
        failures: summary.failures,
        job_id: summary.job_id,
        seconds: Math.round(summary.seconds * 10) / 10,
        grids: summary.grids,
        tokens: summary.tokens,
        cost_usd: summary.cost_usd,
      })}\n`,
    );
    return;
  }
  const folder = resolve(options.folder);
  const show = (p: string) => (p.startsWith(folder) ? p.slice(folder.length + 1) : p);
  const lines = [
    '',
    `Triage complete in ${summary.seconds.toFixed(1)} s (${summary.grids} grids, job ${summary.job_id})`,
    `  input      ${summary.total_input} photos${summary.failed ? `, ${summary.failed} unreadable` : ''}`,
    `  survivors  ${summary.pass1_survivors} after the coarse pass`,
    `  selected   ${summary.final_selected} (target ${options.top}, criteria ${options.criteria})`,
  ];
  if (summary.tokens.input > 0)
    lines.push(
      `  usage      ${summary.tokens.input} input + ${summary.tokens.output} output tokens, $${summary.cost_usd.toFixed(4)}`,
    );
  if (summary.failures.length > 0) {
    lines.push('', 'Could not be read:');
    for (const f of summary.failures) lines.push(`  ${show(f.path)}: ${f.reason}`);
  }
  lines.push('', 'Picks, best first:');
  summary.selected.forEach((p, i) => lines.push(`  ${String(i + 1).padStart(3)}. ${show(p)}`));
  if (options.out) lines.push('', `Links to the picks are in ${options.out}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function demo(): Promise<void> {
  const settings = readSharedSettings();
  const base = resolve(settings.storageDir, '..');
  const photos = join(base, 'demo-photos');
  const out = join(base, 'demo-picks');
  const existing = await readdir(photos).catch(() => [] as string[]);
  if (existing.length === 0) {
    process.stderr.write(
      `Generating 60 sample photos (good shots, bursts, blurred, dark, blown out, unreadable) in ${photos}\n`,
    );
    await mkdir(photos, { recursive: true });
    await generateSampleSet(photos);
  }
  await rm(out, { recursive: true, force: true });
  const options: RunOptions = {
    folder: photos,
    top: '10%',
    criteria: 'standout',
    passes: 2,
    grids: true,
    json: false,
    out,
  };
  const summary = await runTriage(options, settings);
  printSummary(summary, options);
  const flawed = summary.selected.map((p) => basename(p)).filter((n) => /blurred|dark|overexposed|unreadable/.test(n));
  process.stdout.write(
    flawed.length === 0
      ? 'None of the flawed samples (blurred, dark, overexposed, unreadable) was picked.\n'
      : `Flawed samples picked: ${flawed.join(', ')}\n`,
  );
}

/**
 * The service on one machine: the API and a worker, each its own process (as they are deployed), sharing
 * the environment and a Redis (a private one for the session when none answers). Ctrl-C stops both.
 */
async function serve(): Promise<void> {
  const settings = readSharedSettings();
  const redis = await ensureRedis(settings.redis);
  if (redis.started) process.stderr.write(startedNotice(redis));
  const env = { ...process.env, ...redis.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
  // The worker with its start settings (Node flags, malloc) measured in docs/benchmarks.md.
  const children = [
    spawn(process.execPath, [...WORKER_NODE_ARGS, APP_MAINS.worker], { env: workerEnv(env), stdio: 'inherit' }),
    spawn(process.execPath, [...API_NODE_ARGS, APP_MAINS.api], { env, stdio: 'inherit' }),
  ];
  const exits = children.map((child) => new Promise<number | null>((r) => child.once('exit', (code) => r(code))));
  const stop = () => children.forEach((child) => child.exitCode === null && child.kill('SIGTERM'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // One of them stopping (a crash, a bad setting) stops the other: half a service is no service.
  await Promise.race(exits);
  stop();
  const codes = await Promise.all(exits);
  await redis.stop();
  if (codes.some((c) => c !== 0 && c !== null))
    throw new CliError(`the service stopped (exit codes ${codes.join(', ')})`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const options = runOptions(rest);
      printSummary(await runTriage(options, readSharedSettings()), options);
      return 0;
    }
    case 'demo':
      await demo();
      return 0;
    case 'start':
      await serve();
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 1 : 0;
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

/** 0 done, 2 bad input, 3 no Redis, 130 interrupted (Ctrl-C), 1 anything else. */
function exitCode(err: unknown): number {
  if (err instanceof InterruptedError) return 130;
  if (err instanceof NoRedisError || err instanceof RedisUnavailableError) return 3;
  if (err instanceof CliError || err instanceof TriageInputError || err instanceof SettingsError) return 2;
  return 1;
}

/** Errors whose message says it all; anything else is unexpected and shown with its stack. */
function explained(err: unknown): boolean {
  return exitCode(err) !== 1 || err instanceof TriageEndedError;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const code = exitCode(err);
  process.stderr.write(`triage: ${explained(err) ? (err as Error).message : ((err as Error).stack ?? String(err))}\n`);
  process.exitCode = code;
}
