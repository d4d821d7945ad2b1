/** The selection-quality section of docs/benchmarks.md: one row per set and provider. */
import { hostLine, describeHost } from '../report.js';
import type { RunResult, RunPhoto } from '../run.js';
import type { QualityScore } from './score.js';

export interface QualityRun {
  set: { photos: number; seed: number; strengths: string; description: string };
  provider: 'offline' | 'anthropic';
  score: QualityScore;
  run: RunResult<RunPhoto>;
}

export function renderQualitySection(
  runs: readonly QualityRun[],
  options: { target: string; loads: readonly number[] },
): string {
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const host = describeHost();
  const lines = [
    '<!-- bench:quality -->',
    `## Selection quality on real photographs — ${date} UTC`,
    '',
    hostLine(host, loadNote(options.loads, host.cores)),
    '',
    "Written by `npm run bench:quality`. Sets built from the photographs of Debian's desktop-background packages " +
      '(lomiri-wallpapers, mate-backgrounds, plasma-workspace-wallpapers), each scene once per set, 2400 px JPEGs; flaw ' +
      'strengths are those of a 24 MP frame, scaled. "tuned": the strengths the judge was tuned on (defocus σ 8–16 px, ' +
      'shake 30–60 px, exposure ×0.2–0.3 and ×2–3, noise σ 12–16); "other": other seeds and wider strengths it never saw. ' +
      `Real worker, local storage, two passes, target ${options.target}. The Anthropic provider runs against the local ` +
      'Messages API server, whose "model" picks the first cells it is asked for: it measures what the pipeline ' +
      "around a model does (grids, groups, signals, final cut), not a model's taste.",
    '',
    '| set | provider | picks | flawed picks | same-scene extras | bursts, pick not the sharp frame | scenes covered | time | worker peak RSS |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.map((r) => {
      const s = r.score;
      return (
        `| ${r.set.photos}, seed ${r.set.seed}, ${r.set.strengths} | ${r.provider} | ${s.picks} | ${s.flawed.length} | ` +
        `${s.sameSceneExtras} | ${s.burstsMissed} of ${s.bursts} | ${s.scenesCovered} of ${s.scenes} | ` +
        `${(r.run.wallMs / 1000).toFixed(0)} s | ${(r.run.peakRss / 1048576).toFixed(0)} MB |`
      );
    }),
    '',
    'Sets:',
    ...[...new Map(runs.map((r) => [`${r.set.photos}-${r.set.seed}`, r.set])).values()].map(
      (s) => `- ${s.photos}, seed ${s.seed}, ${s.strengths}: ${s.description}.`,
    ),
  ];
  const flawed = runs.filter((r) => r.score.flawed.length > 0);
  if (flawed.length > 0) {
    lines.push('', 'Flawed picks:');
    for (const r of flawed) {
      lines.push(
        `- ${r.set.photos}, seed ${r.set.seed}, ${r.provider}: ${r.score.flawed.map((f) => `${f.name} (${f.flaw})`).join(', ')}`,
      );
    }
  }
  lines.push('<!-- /bench:quality -->');
  return lines.join('\n');
}

/**
 * What the load average said around the worker runs: above the core count, other work (set generation
 * included) shared the machine, and the times are loose; the picks and the memory are not.
 */
function loadNote(loads: readonly number[], cores: number): string {
  if (loads.length === 0) return '';
  const [lo, hi] = [Math.min(...loads), Math.max(...loads)].map((x) => x.toFixed(1));
  const range = lo === hi ? lo : `${lo}–${hi}`;
  return Math.max(...loads) > cores
    ? `; 1-minute load average ${range} around the runs, above the ${cores} cores (this benchmark's own processes count in it): other work shared the machine, so times are loose`
    : `; 1-minute load average ${range} around the runs`;
}
