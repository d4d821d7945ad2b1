/**
 * Prometheus metrics, gathered on each scrape from what the API process can see: BullMQ's counts, and the
 * grid records of triages that finished since this process started watching (read once per finished job).
 * Workers' memory comes from the heartbeats they write to Redis (RSS and peak RSS from the operating system).
 * Several API replicas each report the same finished jobs, so aggregate the job counters with max, not sum.
 */
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GridRecord, TriageStatus, TriageStore } from '@triage/queue';

export interface MetricsDeps {
  store: TriageStore;
  queues: Queue[];
  triageQueue: Queue;
}

/** Finished jobs looked at per scrape; older ones were counted by an earlier scrape (or never will be). */
const SCAN = 200;

export function createMetrics(deps: MetricsDeps) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'triage_api_' });
  registerLiveGauges(registry, deps);
  const finished = registerFinishedMetrics(registry);
  const seen = new Set<string>();

  async function observeFinished(): Promise<void> {
    const jobs = await deps.triageQueue.getJobs(['completed', 'failed'], 0, SCAN - 1);
    for (const job of jobs) {
      const id = job.id;
      if (!id || seen.has(id)) continue;
      seen.add(id);
      const status = await deps.store.status(id);
      if (!status || !['completed', 'failed', 'cancelled'].includes(status.status)) continue;
      recordFinished(finished, status, await deps.store.gridRecords(id));
    }
    // Bound the memory of ids: keep the most recent ones (a Set iterates in insertion order).
    if (seen.size > 10 * SCAN) for (const id of [...seen].slice(0, seen.size - 5 * SCAN)) seen.delete(id);
  }

  return {
    registry,
    async render(): Promise<string> {
      await observeFinished();
      return registry.metrics();
    },
  };
}

/** Gauges read afresh on each scrape: queue counts, workers, and the live workers' memory. */
function registerLiveGauges(registry: Registry, deps: MetricsDeps): void {
  new Gauge({
    name: 'triage_queue_jobs',
    help: 'Jobs in each BullMQ state, per queue',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const counts = await Promise.all(deps.queues.map((q) => q.getJobCounts()));
      this.reset();
      deps.queues.forEach((q, i) => {
        for (const [state, n] of Object.entries(counts[i] ?? {})) this.set({ queue: q.name, state }, n);
      });
    },
  });
  new Gauge({
    name: 'triage_workers',
    help: 'Worker connections consuming the triage queue',
    registers: [registry],
    async collect() {
      this.set(await deps.triageQueue.getWorkersCount());
    },
  });
  new Gauge({
    name: 'triage_worker_memory_bytes',
    help: 'Resident memory of each live worker process (kind: rss now, peak since start), from its heartbeat',
    labelNames: ['worker', 'kind'],
    registers: [registry],
    async collect() {
      const beats = await deps.store.workerBeats();
      const now = Date.now();
      this.reset();
      const gone: string[] = [];
      for (const [worker, beat] of beats) {
        // Silent for a minute: not live. Silent for ten: dead (killed, crashed), forgotten.
        if (now - beat.at > 600_000) gone.push(worker);
        if (now - beat.at > 60_000) continue;
        this.set({ worker, kind: 'rss' }, beat.rssBytes);
        this.set({ worker, kind: 'peak' }, beat.peakRssBytes);
      }
      await deps.store.dropWorker(...gone);
    },
  });
}

type FinishedMetrics = ReturnType<typeof registerFinishedMetrics>;

/** Histograms and counters fed once per triage seen finishing. */
function registerFinishedMetrics(registry: Registry) {
  return {
    jobDuration: new Histogram({
      name: 'triage_job_duration_seconds',
      help: 'From acceptance to the end, of triages seen finishing',
      labelNames: ['status'],
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 3600],
      registers: [registry],
    }),
    gridDuration: new Histogram({
      name: 'triage_grid_duration_seconds',
      help: 'Time a worker spent on one grid (read, thumbnail, compose, judge, record)',
      labelNames: ['pass'],
      buckets: [0.5, 1, 2, 5, 10, 20, 40, 80],
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'triage_jobs_finished_total',
      help: 'Triages seen finishing',
      labelNames: ['status'],
      registers: [registry],
    }),
    photosProcessed: new Counter({
      name: 'triage_photos_processed_total',
      help: 'Photos of finished triages',
      registers: [registry],
    }),
    photosFailed: new Counter({
      name: 'triage_photos_failed_total',
      help: 'Photos that could not be read',
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'triage_tokens_total',
      help: 'Vision model tokens of finished triages',
      labelNames: ['direction'],
      registers: [registry],
    }),
    cost: new Counter({
      name: 'triage_cost_usd_total',
      help: 'Vision model cost of finished triages, USD',
      registers: [registry],
    }),
  };
}

function recordFinished(m: FinishedMetrics, status: TriageStatus, records: GridRecord[]): void {
  for (const r of records) m.gridDuration.observe({ pass: r.pass }, r.durationMs / 1000);
  if (status.completed_at && status.created_at) {
    m.jobDuration.observe(
      { status: status.status },
      (Date.parse(status.completed_at) - Date.parse(status.created_at)) / 1000,
    );
  }
  m.jobsFinished.inc({ status: status.status });
  m.photosProcessed.inc(status.total_input);
  m.photosFailed.inc(status.photos_failed);
  m.tokens.inc({ direction: 'input' }, status.tokens.input);
  m.tokens.inc({ direction: 'output' }, status.tokens.output);
  m.cost.inc(status.cost_usd);
}
