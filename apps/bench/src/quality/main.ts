#!/usr/bin/env node
/**
 * npm run bench:quality [-- options]: what the picks are worth. Builds labelled sets of real photographs
 * (Debian's desktop-background packages) with flaws, near-duplicates and bursts, runs the real worker
 * (local storage) on each with the offline judge and with the Anthropic provider against the local
 * Messages API server, and writes to docs/benchmarks.md the flawed picks, same-scene extras, bursts whose
 * pick is not the sharp frame, scenes covered, time and memory.
 *
 *   --quick          only the ~150-photo sets (the ~1,000-photo ones take much longer to generate and run)
 *   --sets L         comma list of sets to run, as SIZE-SEED (default all: 150-1,150-2,1000-1,1000-3)
 *   --providers L    comma list of offline, anthropic (default both)
 *   --target T       default 15%
 *   --no-report      print the section without touching docs/benchmarks.md
 */
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { DEFAULT_MODEL, profileFor } from '@triage/core';
import { FakeAnthropic } from '@triage/vision/testing';
import { writeSection } from '../report.js';
import { runWorkerJob } from '../run.js';
import { renderQualitySection, type QualityRun } from './report.js';
import { describeSet, scoreSelection } from './score.js';
import { ensureSet, OTHER, TUNED, type LabelledPhoto, type Strengths } from './set.js';
import { ensureSources, SOURCES } from './sources.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const log = (line: string) => process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sets: { type: 'string' },
    providers: { type: 'string', default: 'offline,anthropic' },
    target: { type: 'string', default: '15%' },
    'no-report': { type: 'boolean', default: false },
  },
});

/** The sets: the tuned strengths on seed 1 at both sizes, and other seeds and strengths the judge never saw. */
const SETS: { photos: number; seed: number; strengths: Strengths }[] = [
  { photos: 150, seed: 1, strengths: TUNED },
  { photos: 150, seed: 2, strengths: OTHER },
  { photos: 1000, seed: 1, strengths: TUNED },
  { photos: 1000, seed: 3, strengths: OTHER },
];

const providers = values.providers.split(',').map((p) => p.trim());
for (const p of providers) {
  if (p !== 'offline' && p !== 'anthropic') {
    console.error(`--providers: unknown provider "${p}" (offline, anthropic)`);
    process.exit(2);
  }
}

const sources = ensureSources(log);
if (!sources.ok) {
  console.error(
    `The benchmark is built from photographs in Debian packages that are not installed. Run:\n  ${sources.command}`,
  );
  process.exit(2);
}

const runs: QualityRun[] = [];
/** The 1-minute load average before each worker run and after the last: whether other work shared the machine. */
const loads: number[] = [];
const fake = providers.includes('anthropic') ? await FakeAnthropic.start() : null;
try {
  const chosen = values.sets?.split(',').map((x) => x.trim());
  for (const set of SETS.filter(
    (s) => (!values.quick || s.photos < 300) && (!chosen || chosen.includes(`${s.photos}-${s.seed}`)),
  )) {
    log(`set: ${set.photos} photos, seed ${set.seed}, ${set.strengths.name} strengths`);
    const photos = await ensureSet({ dir: join(repoRoot, '.bench/quality'), sources: SOURCES, ...set, log });
    const files = await Promise.all(photos.map(async (p) => ({ ...p, size: (await stat(p.path)).size })));
    // Another model's taste is not measured: the local server stands in for the structure (grids, groups, prompts).
    const forSet = set.strengths === TUNED ? providers : providers.filter((p) => p === 'offline');
    for (const provider of forSet) {
      loads.push(loadavg()[0]!);
      runs.push(await runOne(set, photos, files, provider as 'offline' | 'anthropic'));
    }
  }
} finally {
  await fake?.close();
}

loads.push(loadavg()[0]!);
const section = renderQualitySection(runs, { target: values.target, loads });
if (!values['no-report']) await writeSection(join(repoRoot, 'docs/benchmarks.md'), 'quality', section);
log(`\n${section}`);

async function runOne(
  set: (typeof SETS)[number],
  photos: LabelledPhoto[],
  files: (LabelledPhoto & { size: number })[],
  provider: 'offline' | 'anthropic',
): Promise<QualityRun> {
  log(`  ${provider}: ${files.length} photos, target ${values.target}`);
  const run = await runWorkerJob({
    repoRoot,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    storageDir: join(repoRoot, '.bench/storage'),
    photos: files,
    latencyMs: 0,
    passes: 2,
    target: values.target,
    timeoutMs: Math.max(900_000, files.length * 5_000),
    log,
    ...(provider === 'anthropic' && {
      profile: profileFor(DEFAULT_MODEL),
      env: { VISION_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: fake!.apiKey, ANTHROPIC_BASE_URL: fake!.url },
    }),
  });
  const score = scoreSelection(photos, run.selectedIndexes);
  log(
    `  ${provider}: ${score.flawed.length} flawed picks, ${score.sameSceneExtras} same-scene extras, ${score.burstsMissed}/${score.bursts} bursts missed`,
  );
  return { set: { ...set, strengths: set.strengths.name, description: describeSet(photos) }, provider, score, run };
}
