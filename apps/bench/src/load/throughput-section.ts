/** The status route's section: each variant's median throughput over the rounds, every run, the target met or not. */
import { hostLine } from '../report.js';
import { f0, f1, keyed, loadSaved, mbs, met, type SectionContext } from './sections.js';
import { median } from './stats.js';
import type { ThroughputRun } from './throughput.js';

interface VariantSummary {
  variant: string;
  rounds: number;
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p99: number;
  p99Min: number;
  p99Max: number;
  non2xx: number;
}

export function summarize(runs: readonly ThroughputRun[]): VariantSummary[] {
  const names = [...new Set(runs.map((r) => r.variant))];
  return names.map((variant) => {
    // Only the runs during which a job was running (the target's condition), unless none was.
    const all = runs.filter((r) => r.variant === variant && r.path.endsWith('/status'));
    const xs = all.some((r) => r.jobRunning !== false) ? all.filter((r) => r.jobRunning !== false) : all;
    const rps = xs.map((r) => r.rps);
    const p99 = xs.map((r) => r.p99);
    return {
      variant,
      rounds: xs.length,
      rps: median(rps),
      rpsMin: Math.min(...rps),
      rpsMax: Math.max(...rps),
      p99: median(p99),
      p99Min: Math.min(...p99),
      p99Max: Math.max(...p99),
      non2xx: xs.reduce((n, r) => n + r.non2xx + r.errors, 0),
    };
  });
}

/** Candidate runs of the status route saved since (--variant), each against the code as it is in the same rounds. */
function candidateNotes(sc: SectionContext): string {
  if (sc.variant) return '';
  const notes: string[] = [];
  const runsOf: Record<string, string> = {
    'api-fixes': 'A patched copy of the current build',
    'api-fixes-nice': 'The same patched copy, with the worker at nice 10',
    'semi-space-1': 'The API with a 1 MB young generation (it brings the upload and ZIP under 128 MB, below)',
    'semi-space-2': 'The API with a 2 MB young generation (which also does)',
  };
  for (const [name, what] of Object.entries(runsOf)) {
    const saved = loadSaved<ThroughputRun[]>(sc.workDir, `load-api-status-${name}`);
    if (!saved) continue;
    const [base, ...cands] = summarize(saved.data);
    if (!base || cands.length === 0) continue;
    notes.push(
      `${what} (${saved.date}, ${base.rounds} interleaved rounds): ` +
        cands
          .map(
            (c) =>
              `${c.variant.replace(/^candidate:? /, '')}: median ${f0(c.rps)} req/s (${f0(c.rpsMin)}–${f0(c.rpsMax)}), p99 ${f1(c.p99)} ms`,
          )
          .join('; ') +
        `; the code as it is in the same rounds: ${f0(base.rps)} req/s (${f0(base.rpsMin)}–${f0(base.rpsMax)}), p99 ${f1(base.p99)} ms`,
    );
  }
  return notes.length > 0
    ? ` Candidates measured with \`--variant\` on earlier builds (the CryptoKey, request lines at debug only, the worker at nice 10 and the API's 2 MB young generation have since been adopted, and verified tokens are remembered; the figures above are of the code with all of them): ${notes.join('. ')}.`
    : '';
}

export function throughputSection(sc: SectionContext, runs: ThroughputRun[], date: string): string {
  const key = keyed(sc, 'load-api-status');
  const summaries = summarize(runs);
  const main = summaries[0]!;
  const first = runs[0]!;
  const loads = runs.map((r) => r.load);
  const loadStart = Math.min(...loads.map((l) => l.loadAtStart));
  const loadMax = Math.max(...loads.map((l) => l.loadMax));
  const row = (r: ThroughputRun) =>
    `| ${r.round} | ${r.label} | ${f0(r.rps)} | ${f1(r.p50)} / ${f1(r.p90)} / ${f1(r.p99)} / ${f1(r.max)} | ${r.requests} (${r.non2xx} non-2xx, ${r.errors} errors) | ${r.jobRunning === null ? '—' : r.jobRunning ? `yes (${r.gridsDuring} grids meanwhile)` : 'no'} | ${mbs(r.apiPeakRss)} | ${r.load.loadAtStart.toFixed(2)} / ${r.load.loadMax.toFixed(2)} |`;
  const ok = main.rps >= 10_000 && main.p99 <= 20 && main.non2xx === 0;
  const health = runs.find((r) => r.path.endsWith('/health'));
  const others = summaries.slice(1);
  const lines = [
    `<!-- bench:${key} -->`,
    `## API: the status route's throughput${sc.candidate} — ${date}`,
    '',
    hostLine(
      sc.host,
      `; autocannon 9 (its own process, -c ${first.connections} -d ${first.durationS}) on the same 2 cores; load average (1 min) ${loadStart.toFixed(2)} at the lowest start of a run, ${loadMax.toFixed(2)} at most (this run's own processes count in it): other processes of the machine may share these 2 cores`,
    ),
    '',
    `Setup (\`npm run load -- --only throughput\`): ${summaries.length} API processes (${summaries.map((v) => v.variant).join('; ')}), each with an HS256 secret (every request carries a token, verified), ` +
      `on one prefix; one worker process running jobs of ${sc.jobPhotos} small photos meanwhile (several queued, so that one is always running; a run during which none was is left out of the medians); autocannon on the first job's GET /{id}/status with its owner's token, ` +
      `one API at a time, in ${Math.max(...runs.map((r) => r.round))} round${Math.max(...runs.map((r) => r.round)) > 1 ? 's' : ''} taking the variants in turn (so that a change in the machine's other load falls on all of them), plus /health once. ` +
      'Three processes (API, worker, autocannon) and Redis share 2 cores, besides whatever else the machine runs.',
    '',
    '| variant | status route: median req/s (range) | median p99 (range) | errors |',
    '|---|---|---|---|',
    ...summaries.map(
      (v) =>
        `| ${v.variant} | ${f0(v.rps)} (${f0(v.rpsMin)}–${f0(v.rpsMax)}) | ${f1(v.p99)} ms (${f1(v.p99Min)}–${f1(v.p99Max)}) | ${v.non2xx} |`,
    ),
    '',
    '| round | run | req/s | latency p50 / p90 / p99 / max (ms) | requests | job running | API peak RSS (during the run) | load avg start / max |',
    '|---|---|---|---|---|---|---|---|',
    ...runs.map(row),
    '',
    '| target (issue 5, item 6) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| status route ≥ 10,000 req/s with p99 ≤ 20 ms while a job runs | ${main.variant}: median ${f0(main.rps)} req/s, p99 ${f1(main.p99)} ms | **${met(ok)}** | ` +
      (ok
        ? ''
        : `the API is one Node process, and while the worker takes about a core and autocannon another, it gets what is left of 2 cores (less with the machine's other load)` +
          (health ? `: even GET /health (no token, no Redis) gives ${f0(health.rps)} req/s here. ` : '. ') +
          `Per status request the API finds the token among those it has verified (a SHA-256; a new token is verified with jose), ` +
          `reads owner and status in one HMGET and serializes the reply; request lines are logged at debug level only, so LOG_LEVEL changes little` +
          (others.length > 0
            ? `; ${others.map((v) => `${v.variant}: median ${f0(v.rps)} req/s, p99 ${f1(v.p99)} ms`).join('; ')}`
            : '') +
          '.' +
          candidateNotes(sc)) +
      ' |',
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}
