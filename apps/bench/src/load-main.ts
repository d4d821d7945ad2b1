#!/usr/bin/env node
/**
 * npm run load [-- options]: the service under load, from the outside (see load/: one file per scenario,
 * and the plumbing they share), written to docs/benchmarks.md as dated sections with every target marked
 * met / not met.
 *
 *   --only fairness|throughput|transfer   one part (default: all three)
 *   --users U --photos P --pollers C      the fairness run (default 50 users × 100 photos, 200 pollers)
 *   --workers 1,2                         worker counts of the fairness run (one run each)
 *   --connections N --duration S          autocannon on the status route (default 50, 10 s)
 *   --job-photos N                        the job running meanwhile (default 2000 small photos)
 *   --rounds R                            rounds of the status measurement, variants in turn (default 3)
 *   --files N                             the upload / ZIP size (default 200 × 8 MiB)
 *   --api-node-options="..."              NODE_OPTIONS for the API processes (e.g. a V8 heap setting to try)
 *   --api-script=PATH                     another build of the API's server.js (a candidate fix), measured the same way
 *   --api-env="K=V K2=V2"                 more environment for the API processes
 *   --worker-nice N                       run the workers at nice N (a candidate setting)
 *   --candidate "LABEL|K=V K2=V2"         with --variant and --only throughput: one more API variant (the --api-script
 *                                         build with this environment), measured in the same rounds; repeatable
 *   --variant NAME                        names such a candidate: its sections get their own keys and titles
 *   --render                              no measurement: render the sections again from the saved results
 *                                         (.bench/load/results), e.g. to cite candidate runs made since
 *   --no-report                           print the sections without touching docs/benchmarks.md
 *   --smoke                               5 users × 20 photos, 20 pollers, 3 s autocannon, 10 files
 */
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeHost, writeSection } from './report.js';
import { utcStamp } from './util.js';
import { runFairness, type FairnessResult } from './load/fairness.js';
import { fairnessSection } from './load/fairness-section.js';
import { parseLoadOptions } from './load/options.js';
import { keyed, loadSaved, save, type SectionContext } from './load/sections.js';
import type { LoadContext } from './load/service.js';
import { runThroughput, type ApiVariant, type ThroughputRun } from './load/throughput.js';
import { throughputSection } from './load/throughput-section.js';
import { runTransfers, type TransferResult } from './load/transfer.js';
import { transferSection } from './load/transfer-section.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const log = (line: string) => process.stdout.write(`${line}\n`);

const opts = parseLoadOptions();
const { only, users, photos, files, variant, apiNodeOptions } = opts;
const ctx: LoadContext = {
  repoRoot,
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  workDir: join(repoRoot, '.bench/load'),
  log,
};
ctx.apiEnv = opts.apiEnv;
if (opts.workerNice !== undefined) ctx.workerNice = opts.workerNice;
if (opts.apiScript) ctx.apiScript = resolve(opts.apiScript);
const sc: SectionContext = {
  host: describeHost(),
  variant,
  candidate: variant
    ? ` (candidate: ${variant}${apiNodeOptions ? `, NODE_OPTIONS=${apiNodeOptions}` : ''}${ctx.workerNice ? `, workers at nice ${ctx.workerNice}` : ''})`
    : '',
  workDir: ctx.workDir,
  jobPhotos: opts.jobPhotos,
  files,
};
const doc = join(repoRoot, 'docs/benchmarks.md');
const fairnessKey = (workers: number) => keyed(sc, `load-fairness-${users}x${photos}-${workers}w`);
const throughputKey = keyed(sc, 'load-api-status');
const transferKey = keyed(sc, `load-api-transfer-${files}`);

async function emit(key: string, section: string): Promise<void> {
  log(`\n${section}\n`);
  if (!opts.noReport) {
    await writeSection(doc, key, section);
    log(`written to ${doc} (${key})`);
  }
}

/** --render: the sections again from the saved results, no measurement. */
async function renderSaved(): Promise<void> {
  if (!only || only === 'fairness') {
    for (const workers of opts.workerCounts) {
      const saved = loadSaved<FairnessResult>(ctx.workDir, fairnessKey(workers));
      if (saved) await emit(fairnessKey(workers), fairnessSection(sc, saved.data));
    }
  }
  if (!only || only === 'throughput') {
    const saved = loadSaved<ThroughputRun[]>(ctx.workDir, throughputKey);
    if (saved) await emit(throughputKey, throughputSection(sc, saved.data, saved.date));
  }
  if (!only || only === 'transfer') {
    const saved = loadSaved<TransferResult>(ctx.workDir, transferKey);
    if (saved) await emit(transferKey, transferSection(sc, saved.data, saved.date));
  }
}

async function measureFairness(): Promise<void> {
  for (const workers of opts.workerCounts) {
    log(`fairness: ${users} users × ${photos} photos, ${opts.pollers} pollers, ${workers} worker(s)`);
    const r = await runFairness(ctx, {
      users,
      photosPerJob: photos,
      pollers: opts.pollers,
      workers,
      pollEveryMs: 2000,
      timeoutMs: 20 * 60_000,
    });
    await save(ctx.workDir, fairnessKey(workers), r);
    await emit(fairnessKey(workers), fairnessSection(sc, r));
  }
}

/** A K=V list (the part of --candidate after `|`). */
function parseEnv(spec: string): Record<string, string> {
  return Object.fromEntries(
    spec
      .split(/\s+/)
      .filter(Boolean)
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

/** Candidates (--variant with --api-script / --api-env / --api-node-options) are compared with the code as it is, in the same rounds. */
function throughputVariants(): ApiVariant[] {
  const repoScript = join(repoRoot, 'apps/api/dist/server.js');
  const apiEnv = opts.apiEnv;
  if (!variant)
    return [
      { name: 'LOG_LEVEL=info', script: repoScript, env: { ...apiEnv } },
      { name: 'LOG_LEVEL=warn', script: repoScript, env: { ...apiEnv, LOG_LEVEL: 'warn' } },
    ];
  const candidates = opts.candidates.map((c) => {
    const [label, spec = ''] = c.split('|');
    return { name: `candidate: ${label}`, script: ctx.apiScript ?? repoScript, env: { ...apiEnv, ...parseEnv(spec) } };
  });
  return [
    { name: 'LOG_LEVEL=info (the code as it is)', script: repoScript, env: {} },
    ...(candidates.length > 0
      ? candidates
      : [
          {
            name: `candidate ${variant}${apiNodeOptions ? ` (NODE_OPTIONS=${apiNodeOptions})` : ''}`,
            script: ctx.apiScript ?? repoScript,
            env: { ...apiEnv },
          },
        ]),
  ];
}

async function measureThroughput(): Promise<void> {
  const date = utcStamp();
  const variants = throughputVariants();
  // Each variant carries its own environment and script: the context's would apply to all of them.
  const saved = { env: ctx.apiEnv, script: ctx.apiScript };
  ctx.apiEnv = {};
  delete ctx.apiScript;
  const { connections, duration, jobPhotos, rounds } = opts;
  const runs = await runThroughput(ctx, { connections, durationS: duration, jobPhotos, rounds }, variants);
  ctx.apiEnv = saved.env;
  if (saved.script) ctx.apiScript = saved.script;
  await save(ctx.workDir, throughputKey, { date, data: runs });
  await emit(throughputKey, throughputSection(sc, runs, date));
}

async function measureTransfer(): Promise<void> {
  const date = utcStamp();
  const t = await runTransfers(ctx, files);
  await save(ctx.workDir, transferKey, { date, data: t });
  await emit(transferKey, transferSection(sc, t, date));
}

// Process logs of the previous run (an API at LOG_LEVEL=info under autocannon writes tens of MB).
await rm(join(ctx.workDir, 'logs'), { recursive: true, force: true });

if (opts.render) {
  await renderSaved();
  process.exit(0);
}
if (!only || only === 'fairness') await measureFairness();
if (!only || only === 'throughput') await measureThroughput();
if (!only || only === 'transfer') await measureTransfer();
