/** The fairness scenario's section: every job's waits, the longest gap in grid-times, each target met or not. */
import { WORKER_MALLOC_ENV, WORKER_NODE_ARGS } from '@triage/queue';
import { hostLine } from '../report.js';
import type { FairnessResult } from './fairness.js';
import { f0, f1, keyed, loadSaved, loadText, MB, mbs, met, s1, type SectionContext } from './sections.js';

const WORKER_BOUND_MB = 192;

/** What the same run gave with the workers at nice 10 (a candidate run with --worker-nice 10), when one was saved. */
function niceNote(sc: SectionContext, o: FairnessResult['options']): string {
  const nice = loadSaved<FairnessResult>(
    sc.workDir,
    `load-fairness-${o.users}x${o.photosPerJob}-${o.workers}w-worker-nice-10`,
  );
  if (!nice || sc.variant) return '';
  const n = nice.data;
  return (
    `. The same run with the worker${o.workers > 1 ? 's' : ''} at nice 10 (\`npm run load -- --only fairness --workers ${o.workers} --worker-nice 10 --variant worker-nice-10 --no-report\`, ${nice.date}; ` +
    `not in the start scripts): status p99 ${f1(n.polls.p99)} ms, max ${f1(n.polls.max)} ms, all completed: ${n.allCompleted ? 'yes' : 'no'}, in ${s1(n.wallMs)}: the kernel then lets the API run first when it has work, and the worker takes the idle time`
  );
}

export function fairnessSection(sc: SectionContext, r: FairnessResult): string {
  const o = r.options;
  const key = keyed(sc, `load-fairness-${o.users}x${o.photosPerJob}-${o.workers}w`);
  const jobsByStart = [...r.jobs];
  const firstGrids = jobsByStart.map((j) => f1(j.firstGridMs / 1000)).join(', ');
  const totals = jobsByStart.map((j) => f1(j.totalMs / 1000)).join(', ');
  const lines = [
    `<!-- bench:${key} -->`,
    `## Load and fairness: ${o.users} users × ${o.photosPerJob} photos, ${o.workers} worker${o.workers > 1 ? 's' : ''}${sc.candidate} — ${r.date}`,
    '',
    hostLine(
      sc.host,
      `; load average (1 min) ${loadText(r.load)}: other processes of the machine may share these 2 cores`,
    ),
    '',
    `Setup (\`npm run load -- --only fairness\`): the API process (\`node apps/api/dist/server.js\`, HS256 tokens signed for ${o.users} users, LOG_LEVEL=info, ` +
      `RATE_LIMIT_PER_MINUTE and MAX_ACTIVE_JOBS_PER_USER raised) and ${o.workers} worker process${o.workers > 1 ? 'es' : ''} (\`node ${WORKER_NODE_ARGS.join(' ')} apps/worker/dist/main.js\`, ${Object.entries(
        WORKER_MALLOC_ENV,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}, as the start scripts run it) ` +
      `on Redis 7 with their own prefix and storage folder; ${o.photosPerJob} generated 480 × 360 sample photos (defects and 3 unreadable files included) linked into each user's ` +
      `\`triage/{user}/{job}/\`; the ${o.users} POST /start-from-storage (target 10 %, two passes, offline provider, default grids) sent at once; ` +
      `${o.pollers} clients poll GET /{id}/status every ${o.pollEveryMs / 1000} s (client i follows job i mod ${o.users} with its owner's token) until every job has ended; every latency recorded, as the client sees it. ` +
      "Worker peaks are VmHWM since the process started (as in the worker sections); the API's VmHWM is reset once it is up, so its peak is the run's own.",
    '',
    ...figureRows(r),
    '',
    `Each job, in the order the users started (s): time to first grid ${firstGrids}; total ${totals}.`,
    '',
    ...targetRows(sc, r),
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}

function figureRows(r: FairnessResult): string[] {
  const o = r.options;
  const roundRobin = o.users / o.workers;
  const worst = r.jobs[r.longest.jobIndex]!;
  return [
    '| figure | value |',
    '|---|---|',
    `| jobs ended | ${Object.entries(r.statuses)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')} (all completed: ${r.allCompleted ? 'yes' : 'no'}) in ${s1(r.wallMs)} |`,
    `| start requests (all at once) | p50 ${f0(r.startMs.p50)} ms, max ${f0(r.startMs.max)} ms |`,
    `| status polls | ${r.polls.count} (${r.polls.errors} errors${r.polls.errorSample.length > 0 ? `: ${r.polls.errorSample.join('; ')}` : ''}) |`,
    `| status latency | p50 ${f1(r.polls.p50)} ms, p90 ${f1(r.polls.p90)} ms, p99 ${f1(r.polls.p99)} ms, max ${f1(r.polls.max)} ms (mean ${f1(r.polls.mean)} ms); ` +
      `polls sent in the first 5 s (${r.polls.early.count}, while the ${o.users} starts are accepted): p99 ${f1(r.polls.early.p99)} ms, max ${f1(r.polls.early.max)} ms; after (${r.polls.steady.count}): p99 ${f1(r.polls.steady.p99)} ms, max ${f1(r.polls.steady.max)} ms |`,
    `| grids | ${r.grids.count} (${r.grids.coarse} coarse, ${r.grids.fine} fine); duration median ${f0(r.grids.medianMs)} ms = 1 grid-time (coarse ${f0(r.grids.medianCoarseMs)} ms, fine ${f0(r.grids.medianFineMs)} ms, p90 ${f0(r.grids.p90Ms)} ms) |`,
    `| longest gap between two consecutive grids of one job (finishedAt) | ${s1(r.longest.gapMs)} = **${f1(r.longest.gridTimes)} grid-times** (${worst.user}); round-robin bound ${o.users} jobs ÷ ${o.workers} worker${o.workers > 1 ? 's' : ''} = ${f1(roundRobin)} grid-times |`,
    `| grids of other jobs inside one gap | at most ${r.longest.othersInGap} in all (${o.users - 1} other jobs), at most **${r.longest.oneOtherInGap} from any single other job**; ` +
      `the longest gap holds ${s1(worst.workInLongestGapMs)} of other jobs' grids (÷ ${o.workers} worker${o.workers > 1 ? 's' : ''} = ${s1(worst.workInLongestGapMs / o.workers)}): ` +
      `in coarse grid-times the gap is ${f1(r.longest.gapMs / r.grids.medianCoarseMs)} |`,
    `| time to first grid (accepted → first grid recorded) | p50 ${s1(r.firstGrid.p50)}, max ${s1(r.firstGrid.max)} |`,
    `| total time (accepted → completed) | p50 ${s1(r.total.p50)}, max ${s1(r.total.max)} |`,
    `| worker peak RSS (VmHWM) | ${r.workerPeakRss.map(mbs).join(', ')} (idle ${r.workerIdleRss.map(mbs).join(', ')}) |`,
    `| API peak RSS (VmHWM, reset after start-up) | ${mbs(r.apiPeakRss)} (start-up peak ${mbs(r.apiStartupPeak)}) |`,
  ];
}

function targetRows(sc: SectionContext, r: FairnessResult): string[] {
  const o = r.options;
  const roundRobin = o.users / o.workers;
  const peakWorker = Math.max(...r.workerPeakRss);
  const fewGridTimes = r.longest.gridTimes <= 5;
  return [
    '| target (issue 6, load and fairness) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| every job completes | ${Object.entries(r.statuses)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')} | **${met(r.allCompleted)}** | |`,
    `| status p99 < 50 ms (${o.pollers} clients every ${o.pollEveryMs / 1000} s) | p99 ${f1(r.polls.p99)} ms, max ${f1(r.polls.max)} ms | **${met(r.polls.p99 < 50 && r.polls.errors === 0)}** | ` +
      `${r.polls.p99 < 50 ? `about ${f0(r.polls.count / (r.wallMs / 1000))} req/s is far below the route’s capacity (see the status-route section); the tail is waiting for a core` : `about ${f0(r.polls.count / (r.wallMs / 1000))} req/s is far below the route’s capacity (see the status-route section), so the tail is time spent waiting for a core, not work: the API shares 2 cores with the worker${o.workers > 1 ? 's' : ''} (busy a full core while it builds a grid), the ${o.pollers} clients in this process, Redis and whatever else the machine runs (load average up to ${r.load.loadMax.toFixed(1)})`}; ` +
      `first 5 s (the ${o.users} starts being accepted, each checking ${o.photosPerJob} files): p99 ${f1(r.polls.early.p99)} ms; after: p99 ${f1(r.polls.steady.p99)} ms` +
      niceNote(sc, o) +
      ' |',
    `| no job waits for another's whole run; longest gap within a few grid-times | ${f1(r.longest.gridTimes)} grid-times; at most ${r.longest.oneOtherInGap} grid(s) of any one other job inside a gap | ` +
      `**${fewGridTimes ? 'met' : r.longest.oneOtherInGap <= 2 ? 'not met (a few grid-times); met (no job waits for another’s whole run)' : 'not met'}** | ` +
      `${fewGridTimes ? '' : `grid jobs take turns by user (BullMQ priorities: each user's job takes turns 1, 2, 3, … beside the others'): between two grids of one job every other user's job gets about one grid, so the gap is about jobs ÷ workers = ${f1(roundRobin)} grid-times, not "a few", whenever ${o.users} jobs run on ${o.workers} worker${o.workers > 1 ? 's' : ''}. "A few grid-times" would need about as many workers as jobs, or a cap on a user's share; `}` +
      `a ${o.photosPerJob}-photo job has ${f1(r.grids.count / o.users)} grids on average: one coarse grid (up to 120 cells, median ${f0(r.grids.medianCoarseMs)} ms) and small fine grids (16 cells, median ${f0(r.grids.medianFineMs)} ms), so the median grid is a fine one, while the longest gap is a job's wait from its coarse grid to its first fine grid, ` +
      `filled with the other jobs' coarse grids: in median grid-times it exceeds jobs ÷ workers by about the ratio coarse ÷ median |`,
    `| worker memory in bound (≤ ${WORKER_BOUND_MB} MB, issue 5) | ${r.workerPeakRss.map(mbs).join(', ')} | **${met(peakWorker / MB <= WORKER_BOUND_MB)}** | ` +
      `${peakWorker / MB <= WORKER_BOUND_MB ? 'small photos (480 × 360): one pipeline at a time keeps the peak near the idle footprint' : 'the worker’s idle footprint plus one image pipeline; see the worker sections above'} |`,
  ];
}
