/**
 * Where Redis is written: a triage's settings, photos, per-grid records, verdicts and result. Every state
 * change that must not be half-done (accepting a job, recording a grid, starting the fine pass, finishing)
 * is one Lua script (`lua/*.lua`, see scripts.ts), so a worker killed at any moment leaves either the old
 * state or the new one.
 */
import type { RedisClient } from './redis.js';
import { defineScripts, runScript } from './scripts.js';
import { progressOf, type GridPlan, type JobStatus, type Phase } from '@triage/core';
import {
  allKeys,
  cancelChannel,
  eventsChannel,
  finishedKey,
  triageKeys,
  userJobsKey,
  workersKey,
  type CoarseVerdict,
  type FineVerdict,
  type GridRecord,
  type PhotoInput,
  type SelectedPhoto,
  type TriageRequest,
  type TriageStatus,
  type WorkerHeartbeat,
} from './contract.js';

/** The meta hash fields a status needs: read with one HMGET. */
const STATUS_FIELDS = [
  'status',
  'phase',
  'total_input',
  'pass1_survivors',
  'final_selected',
  'error_message',
  'created_at',
  'completed_at',
  'target',
  'criteria',
  'passes',
  'failed',
  'coarse_total',
  'coarse_done',
  'fine_total',
  'fine_done',
  'tokens_in',
  'tokens_out',
  'cost_usd',
  'estimated_grids',
  'user_id',
  'handoff_done',
  'handoff_failed',
  'handoff_error',
] as const;

export interface TriageMeta {
  triageId: string;
  userId: string;
  bucket: string;
  status: JobStatus;
  phase: Phase | null;
  target: string;
  criteria: string;
  passes: 1 | 2;
  total: number;
  plan: GridPlan;
  saveGrids: boolean;
  coarseDone: number;
  fineDone: number;
  fineSizes: number[];
  /** Photos that survived the coarse pass, once it has ended. */
  pass1Survivors: number | null;
  cancelRequested: boolean;
  failed: number;
  createdAt: string;
  /** The last pass picked nothing, so the selection is the top of the ranking. */
  fallback: boolean;
}

/** A triage as a user's list of jobs shows it: one HMGET of its meta hash. */
export interface JobSummary {
  triageId: string;
  status: JobStatus;
  phase: Phase | null;
  total: number;
  createdAt: string;
  coarseDone: number;
  coarseTotal: number;
  fineDone: number;
  fineTotal: number;
}

const SUMMARY_FIELDS = [
  'status',
  'phase',
  'total_input',
  'created_at',
  'coarse_done',
  'coarse_total',
  'fine_done',
  'fine_total',
] as const;

export interface FinishOutcome {
  status: Extract<JobStatus, 'completed' | 'failed' | 'cancelled'>;
  errorMessage?: string;
  selected?: number[];
  ranks?: Map<number, number>;
  pass1Survivors?: number;
  fallback?: boolean;
  /** Near-duplicate groups, when none were recorded at the start of the fine pass (see TriageStore.groups). */
  groups?: readonly (number | null)[];
}

/** A storage outage a triage is waiting out: when its first wait began (ms), how many waits so far. */
export interface OutageState {
  since: number;
  pauses: number;
}

/** How a triage waits out a storage outage, ms. */
export interface PausePolicy {
  /** First wait, doubling up to `maxWaitMs`. */
  waitMs: number;
  maxWaitMs: number;
  /** How long an outage may last before photos fail instead of the job waiting. */
  limitMs: number;
}

/** The meta hash fields of an outage (see lua/note-pause.lua). */
const OUTAGE_SINCE = 'storage_outage_since';
const OUTAGE_PAUSES = 'storage_pauses';

export type CreateOutcome = { kind: 'created' } | { kind: 'exists' } | { kind: 'at-cap'; active: number };

export interface TriageStoreOptions {
  prefix: string;
  /**
   * How long a finished triage is kept, seconds (0 = forever). The retention sweep then removes its stored
   * photos and its records; the records also carry a TTL of a week more, so that Redis never grows without
   * bound even where no sweep runs.
   */
  retentionSeconds: number;
}

/** How long records outlive the retention, as a safety net behind the sweep. */
export const RECORD_GRACE_SECONDS = 7 * 24 * 3600;

function nowIso(): string {
  return new Date().toISOString();
}

function int(value: string | null | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

export class TriageStore {
  readonly prefix: string;
  readonly retentionSeconds: number;

  constructor(
    readonly redis: RedisClient,
    options: TriageStoreOptions,
  ) {
    this.prefix = options.prefix;
    this.retentionSeconds = options.retentionSeconds;
    defineScripts(redis);
  }

  keys(triageId: string) {
    return triageKeys(this.prefix, triageId);
  }

  /**
   * Stores a validated request, unless its id is taken or its user already has `maxActive` pending or
   * processing triages (0 = no cap): nothing is changed then.
   */
  async create(request: TriageRequest, estimatedGrids: number, maxActive = 0): Promise<CreateOutcome> {
    const k = this.keys(request.triageId);
    const created = nowIso();
    const fields: Record<string, string | number> = {
      user_id: request.userId,
      bucket: request.bucket,
      status: 'pending',
      target: request.target,
      criteria: request.criteria,
      passes: request.passes,
      total_input: request.photos.length,
      plan: JSON.stringify(request.plan),
      coarse_total: request.plan.coarseSizes.length,
      coarse_done: 0,
      fine_total: 0,
      fine_done: 0,
      failed: 0,
      tokens_in: 0,
      tokens_out: 0,
      cost_usd: 0,
      estimated_grids: estimatedGrids,
      save_grids: request.saveGrids ? 1 : 0,
      created_at: created,
      updated_at: created,
    };
    const flat = Object.entries(fields).flatMap(([key, value]) => [key, String(value)]);
    const photos = request.photos.map((p) => JSON.stringify(p));
    const ok = await runScript(
      this.redis,
      'create',
      [k.meta, k.photos, userJobsKey(this.prefix, request.userId)],
      [
        request.triageId,
        String(Date.now()),
        JSON.stringify(flat),
        JSON.stringify(photos),
        String(maxActive),
        triageKeys(this.prefix, '').meta,
      ],
    );
    const code = Number(ok);
    return code === 1 ? { kind: 'created' } : code < 0 ? { kind: 'at-cap', active: -code } : { kind: 'exists' };
  }

  async meta(triageId: string): Promise<TriageMeta | null> {
    const m = await this.redis.hgetall(this.keys(triageId).meta);
    if (!m.status) return null;
    return {
      triageId,
      userId: m.user_id ?? '',
      bucket: m.bucket ?? '',
      status: m.status as JobStatus,
      phase: (m.phase as Phase | undefined) ?? null,
      target: m.target ?? '',
      criteria: m.criteria ?? 'standout',
      passes: m.passes === '1' ? 1 : 2,
      total: int(m.total_input),
      plan: JSON.parse(m.plan ?? '{}') as GridPlan,
      saveGrids: m.save_grids === '1',
      coarseDone: int(m.coarse_done),
      fineDone: int(m.fine_done),
      fineSizes: m.fine_sizes ? (JSON.parse(m.fine_sizes) as number[]) : [],
      pass1Survivors: m.pass1_survivors === undefined ? null : int(m.pass1_survivors),
      cancelRequested: m.cancel_requested === '1',
      failed: int(m.failed),
      createdAt: m.created_at ?? '',
      fallback: m.fallback === '1',
    };
  }

  /** The owner of a triage, or null when there is no such triage. One HGET. */
  async owner(triageId: string): Promise<string | null> {
    return this.redis.hget(this.keys(triageId).meta, 'user_id');
  }

  /**
   * A user's triages, newest first (one pipelined HMGET each). Ids whose records are gone (expired or
   * forgotten) are dropped from the user's index on the way.
   */
  async userJobs(userId: string): Promise<JobSummary[]> {
    const indexKey = userJobsKey(this.prefix, userId);
    const ids = await this.redis.zrevrange(indexKey, 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys(id).meta, ...SUMMARY_FIELDS);
    const rows = (await pipeline.exec()) ?? [];
    const gone: string[] = [];
    const jobs: JobSummary[] = [];
    ids.forEach((triageId, i) => {
      const [err, values] = rows[i] ?? [null, null];
      if (err) throw err;
      const [status, phase, total, createdAt, coarseDone, coarseTotal, fineDone, fineTotal] = values as (
        | string
        | null
      )[];
      if (!status) gone.push(triageId);
      else
        jobs.push({
          triageId,
          status: status as JobStatus,
          phase: (phase as Phase | null) ?? null,
          total: int(total),
          createdAt: createdAt ?? '',
          coarseDone: int(coarseDone),
          coarseTotal: int(coarseTotal),
          fineDone: int(fineDone),
          fineTotal: int(fineTotal),
        });
    });
    if (gone.length > 0) await this.redis.zrem(indexKey, ...gone);
    return jobs;
  }

  /** Every photo of a triage, by index. */
  async allPhotos(triageId: string): Promise<PhotoInput[]> {
    const raw = await this.redis.hgetall(this.keys(triageId).photos);
    return Object.entries(raw)
      .map(([index, json]) => [Number(index), JSON.parse(json) as PhotoInput] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, photo]) => photo);
  }

  /** Photos by index, in the order asked. */
  async photos(triageId: string, indexes: readonly number[]): Promise<PhotoInput[]> {
    if (indexes.length === 0) return [];
    const raw = await this.redis.hmget(this.keys(triageId).photos, ...indexes.map(String));
    return raw.map((r, i) => {
      if (r === null) throw new Error(`photo ${indexes[i]} of triage ${triageId} is missing from Redis`);
      return JSON.parse(r) as PhotoInput;
    });
  }

  async survivors(triageId: string, start: number, end: number): Promise<number[]> {
    const raw = await this.redis.lrange(this.keys(triageId).survivors, start, end - 1);
    return raw.map(Number);
  }

  async start(triageId: string): Promise<boolean> {
    const ok = await runScript(this.redis, 'start', [this.keys(triageId).meta], [nowIso()]);
    if (ok === 1) await this.publish(triageId);
    return ok === 1;
  }

  /** Counts one more send of a grid to the provider (an operator sees retries and resumes). */
  async countAttempt(triageId: string, field: string): Promise<number> {
    return this.redis.hincrby(this.keys(triageId).attempts, field, 1);
  }

  async attempts(triageId: string): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.keys(triageId).attempts);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /**
   * Records a grid and advances the job's step in one atomic script. Returns false when the grid was
   * already recorded (a duplicate delivery) or the job has ended: nothing is changed then.
   */
  async recordGrid(
    triageId: string,
    record: GridRecord,
    verdicts: ReadonlyMap<number, CoarseVerdict | FineVerdict>,
    newlyFailed: number,
  ): Promise<boolean> {
    const k = this.keys(triageId);
    const flat = [...verdicts].flatMap(([index, v]) => [String(index), JSON.stringify(v)]);
    const ok = await runScript(
      this.redis,
      'record-grid',
      [k.meta, k.grids, record.pass === 'coarse' ? k.coarse : k.fine],
      [
        `${record.pass}:${record.grid}`,
        JSON.stringify(record),
        `${record.pass}_done`,
        String(newlyFailed),
        String(record.usage.inputTokens),
        String(record.usage.outputTokens),
        String(record.usage.costUsd),
        nowIso(),
        JSON.stringify(flat),
      ],
    );
    if (ok === 1) await this.publish(triageId);
    return ok === 1;
  }

  /** The grids of a pass already recorded, by number. */
  async recordedGrids(triageId: string, pass: 'coarse' | 'fine'): Promise<Set<number>> {
    const fields = await this.redis.hkeys(this.keys(triageId).grids);
    return new Set(fields.filter((f) => f.startsWith(`${pass}:`)).map((f) => Number(f.slice(pass.length + 1))));
  }

  /**
   * Where the `count` grids of a pass start in the queue's order (BullMQ priority, 1 = first): after what the
   * user's shorter or older running triages still have queued (lua/fair-turn.lua). 0 when the triage has ended.
   */
  async fairTurn(
    meta: Pick<TriageMeta, 'triageId' | 'userId'>,
    pass: 'coarse' | 'fine',
    count: number,
  ): Promise<number> {
    const turn = await runScript(
      this.redis,
      'fair-turn',
      [this.keys(meta.triageId).meta, userJobsKey(this.prefix, meta.userId)],
      [meta.triageId, pass, triageKeys(this.prefix, '').meta, String(count)],
    );
    return Number(turn);
  }

  async gridRecords(triageId: string): Promise<GridRecord[]> {
    const raw = await this.redis.hgetall(this.keys(triageId).grids);
    return Object.values(raw)
      .map((r) => JSON.parse(r) as GridRecord)
      .sort((a, b) => (a.pass === b.pass ? a.grid - b.grid : a.pass === 'coarse' ? -1 : 1));
  }

  async coarseVerdicts(triageId: string): Promise<Map<number, CoarseVerdict>> {
    return this.verdictMap<CoarseVerdict>(this.keys(triageId).coarse);
  }

  /** The coarse verdicts of some photos, by index (one HMGET). */
  async coarseVerdictsOf(triageId: string, indexes: readonly number[]): Promise<Map<number, CoarseVerdict>> {
    if (indexes.length === 0) return new Map();
    const raw = await this.redis.hmget(this.keys(triageId).coarse, ...indexes.map(String));
    return new Map(
      indexes.flatMap((index, i) => (raw[i] ? [[index, JSON.parse(raw[i]) as CoarseVerdict] as const] : [])),
    );
  }

  async fineVerdicts(triageId: string): Promise<Map<number, FineVerdict>> {
    return this.verdictMap<FineVerdict>(this.keys(triageId).fine);
  }

  private async verdictMap<T>(key: string): Promise<Map<number, T>> {
    const raw = await this.redis.hgetall(key);
    return new Map(Object.entries(raw).map(([k, v]) => [Number(k), JSON.parse(v) as T]));
  }

  /**
   * Starts the fine pass over `survivors` (photo indexes, in the order the grids take them) in grids of
   * `sizes`, and records the job's near-duplicate `groups`, all in one script. Idempotent.
   */
  async beginFine(
    triageId: string,
    survivors: readonly number[],
    sizes: readonly number[],
    groups: readonly (number | null)[],
  ): Promise<boolean> {
    const k = this.keys(triageId);
    const ok = await runScript(
      this.redis,
      'begin-fine',
      [k.meta, k.survivors, k.groups],
      [JSON.stringify(sizes), JSON.stringify(survivors), nowIso(), JSON.stringify(groups)],
    );
    if (ok === 1) await this.publish(triageId);
    return ok === 1;
  }

  /** Ends a triage (once: a finished triage is never changed again) and starts its retention clock. */
  async finish(triageId: string, outcome: FinishOutcome): Promise<boolean> {
    const k = this.keys(triageId);
    const now = nowIso();
    const fields: Record<string, string | number> = { status: outcome.status, completed_at: now, updated_at: now };
    if (outcome.status === 'completed') {
      fields.phase = 'complete';
      fields.final_selected = outcome.selected?.length ?? 0;
      fields.fallback = outcome.fallback ? 1 : 0;
    }
    if (outcome.pass1Survivors !== undefined) fields.pass1_survivors = outcome.pass1Survivors;
    if (outcome.errorMessage) fields.error_message = outcome.errorMessage;
    const ranks = [...(outcome.ranks ?? [])].flatMap(([index, rank]) => [String(index), String(rank)]);
    const others = allKeys(this.prefix, triageId).filter(
      (key) => ![k.meta, k.selected, k.ranks, k.groups].includes(key),
    );
    const ok = await runScript(
      this.redis,
      'finish',
      [k.meta, k.selected, k.ranks, finishedKey(this.prefix), k.groups, ...others],
      [
        JSON.stringify(Object.entries(fields).flatMap(([key, v]) => [key, String(v)])),
        JSON.stringify((outcome.selected ?? []).map(String)),
        JSON.stringify(ranks),
        String(this.retentionSeconds > 0 ? this.retentionSeconds + RECORD_GRACE_SECONDS : 0),
        triageId,
        String(Date.now()),
        outcome.groups ? JSON.stringify(outcome.groups) : '',
      ],
    );
    if (ok === 1) await this.publish(triageId);
    return ok === 1;
  }

  /** Records a photo's hand-off to scoring: `failure` is why it could not be handed off. Once per photo. */
  async recordHandOff(triageId: string, photoId: string, failure?: string): Promise<boolean> {
    const k = this.keys(triageId);
    const ok = await runScript(this.redis, 'handoff', [k.meta, k.handoff], [photoId, failure ?? 'ok']);
    if (ok === 1) await this.publish(triageId);
    return ok === 1;
  }

  /** Each photo's near-duplicate group (the index of its first photo), or null before they are computed. */
  async groups(triageId: string): Promise<(number | null)[] | null> {
    const raw = await this.redis.get(this.keys(triageId).groups);
    return raw === null ? null : (JSON.parse(raw) as (number | null)[]);
  }

  async selected(triageId: string): Promise<number[]> {
    return (await this.redis.lrange(this.keys(triageId).selected, 0, -1)).map(Number);
  }

  async ranks(triageId: string): Promise<Map<number, number>> {
    const raw = await this.redis.hgetall(this.keys(triageId).ranks);
    return new Map(Object.entries(raw).map(([k, v]) => [Number(k), Number(v)]));
  }

  /**
   * Asks every worker to stop the triage: the flag is seen at the next step, the message stops a step in
   * progress within one photo. A pending job is marked cancelled at once.
   */
  async requestCancel(triageId: string): Promise<void> {
    const k = this.keys(triageId);
    await this.redis.hset(k.meta, 'cancel_requested', '1');
    await this.redis.publish(cancelChannel(this.prefix), triageId);
  }

  /** Deletes every record of a triage (its stored photos are the caller's to remove). */
  async forget(triageId: string, userId: string): Promise<void> {
    await this.redis
      .multi()
      .del(...allKeys(this.prefix, triageId))
      .zrem(userJobsKey(this.prefix, userId), triageId)
      .zrem(finishedKey(this.prefix), triageId)
      .exec();
  }

  /** Triages that ended before `endedBefore` (ms), oldest first: the retention sweep's work list. */
  async finishedBefore(endedBefore: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(finishedKey(this.prefix), '-inf', `(${endedBefore}`, 'LIMIT', 0, limit);
  }

  /** The storage outage the triage is waiting out, if any. */
  async outage(triageId: string): Promise<OutageState | null> {
    const [since, pauses] = await this.redis.hmget(this.keys(triageId).meta, OUTAGE_SINCE, OUTAGE_PAUSES);
    return since ? { since: Number(since), pauses: Number(pauses ?? 0) } : null;
  }

  /**
   * Notes one more wait for the storage, in one script: the wait (doubling with each), and why, in the
   * status's `error_message`. Null when the triage no longer exists: nothing is written then.
   */
  async notePause(
    triageId: string,
    reason: string,
    policy: PausePolicy,
    now = Date.now(),
  ): Promise<{ waitMs: number; line: string } | null> {
    const args = [String(now), reason, String(policy.waitMs), String(policy.maxWaitMs), String(policy.limitMs)];
    const reply = await runScript(this.redis, 'note-pause', [this.keys(triageId).meta], args);
    if (!Array.isArray(reply)) return null;
    await this.publish(triageId);
    return { line: String(reply[0]), waitMs: Number(reply[1]) };
  }

  /** Ends the triage's outage: its record and status no longer show it. */
  async endOutage(triageId: string): Promise<void> {
    const removed = await this.redis.hdel(this.keys(triageId).meta, OUTAGE_SINCE, OUTAGE_PAUSES, 'error_message');
    if (removed > 0) await this.publish(triageId);
  }

  /** Writes a worker process's heartbeat (`workerId`: `host:pid`). */
  async heartbeat(workerId: string, beat: WorkerHeartbeat): Promise<void> {
    await this.redis.hset(workersKey(this.prefix), workerId, JSON.stringify(beat));
  }

  /** Every worker process's last heartbeat, by worker id. */
  async workerBeats(): Promise<Map<string, WorkerHeartbeat>> {
    const raw = await this.redis.hgetall(workersKey(this.prefix));
    return new Map(Object.entries(raw).map(([worker, json]) => [worker, JSON.parse(json) as WorkerHeartbeat]));
  }

  /** Forgets the heartbeats of worker processes that have stopped (or are presumed dead). */
  async dropWorker(...workerIds: string[]): Promise<void> {
    if (workerIds.length > 0) await this.redis.hdel(workersKey(this.prefix), ...workerIds);
  }

  /** The client's view of a triage, from one HMGET: O(1) whatever the job's size. */
  async status(triageId: string): Promise<TriageStatus | null> {
    return this.ownedStatus(triageId, null);
  }

  /** The status, only when `userId` owns the triage (null otherwise): still one HMGET. */
  async ownedStatus(triageId: string, userId: string | null): Promise<TriageStatus | null> {
    const values = await this.redis.hmget(this.keys(triageId).meta, ...STATUS_FIELDS);
    const m = Object.fromEntries(STATUS_FIELDS.map((f, i) => [f, values[i] ?? null])) as Record<
      (typeof STATUS_FIELDS)[number],
      string | null
    >;
    if (!m.status || (userId !== null && m.user_id !== userId)) return null;
    return buildStatus(triageId, m);
  }

  async publish(triageId: string): Promise<void> {
    const status = await this.status(triageId);
    if (status) await this.redis.publish(eventsChannel(this.prefix, triageId), JSON.stringify(status));
  }
}

function buildStatus(triageId: string, m: Record<(typeof STATUS_FIELDS)[number], string | null>): TriageStatus {
  const status = m.status as JobStatus;
  const coarseTotal = int(m.coarse_total);
  const fineTotal = int(m.fine_total);
  const coarseDone = int(m.coarse_done);
  const fineDone = int(m.fine_done);
  const phase = m.phase as Phase | null;
  let progress = null;
  if (status === 'processing' && phase === 'coarse_pass') progress = progressOf(phase, coarseDone, coarseTotal);
  else if (status === 'processing' && phase === 'fine_pass') progress = progressOf(phase, fineDone, fineTotal);
  else if (status === 'processing' && phase) progress = progressOf(phase, 0, 0);
  const gridsDone = coarseDone + fineDone;
  // Until the coarse pass ends, the fine pass's size is the estimate made when the job was accepted.
  const gridsTotal =
    m.phase === 'coarse_pass' || status === 'pending'
      ? Math.max(int(m.estimated_grids), coarseTotal)
      : coarseTotal + fineTotal;
  return {
    job_id: triageId,
    status,
    progress,
    total_input: int(m.total_input),
    // 0 until known, as the contract's clients expect a number (the old service's defaults).
    pass1_survivors: int(m.pass1_survivors),
    final_selected: int(m.final_selected),
    error_message: m.error_message,
    created_at: m.created_at ?? '',
    completed_at: m.completed_at,
    target: m.target ?? '',
    criteria: m.criteria ?? '',
    passes: m.passes === '1' ? 1 : 2,
    photos_failed: int(m.failed),
    grids_done: gridsDone,
    grids_total: gridsTotal,
    tokens: { input: int(m.tokens_in), output: int(m.tokens_out) },
    cost_usd: Math.round(Number(m.cost_usd ?? 0) * 1e6) / 1e6,
    handoff:
      m.handoff_done === null && m.handoff_failed === null
        ? null
        : { handed_off: int(m.handoff_done), failed: int(m.handoff_failed), last_error: m.handoff_error },
  };
}

/** The selected photos of a finished triage, best first, with the names and paths they were given. */
export async function loadSelection(store: TriageStore, triageId: string): Promise<SelectedPhoto[]> {
  const indexes = await store.selected(triageId);
  const [photos, ranks] = await Promise.all([store.photos(triageId, indexes), store.ranks(triageId)]);
  return indexes.map((index, i) => ({
    index,
    rank: ranks.get(index) ?? i + 1,
    name: photos[i]!.name,
    path: photos[i]!.path,
  }));
}

/** Where a grid sent to the provider is kept when the triage asked for it (beside its photos). */
export function gridPath(meta: Pick<TriageMeta, 'userId' | 'triageId'>, pass: 'coarse' | 'fine', grid: number): string {
  return `triage/${meta.userId}/${meta.triageId}/grids/${pass}-${String(grid + 1).padStart(3, '0')}.jpg`;
}

/** Every grid path a triage may have written. */
export function gridPaths(meta: Pick<TriageMeta, 'userId' | 'triageId' | 'plan' | 'fineSizes'>): string[] {
  return [
    ...meta.plan.coarseSizes.map((_, i) => gridPath(meta, 'coarse', i)),
    ...meta.fineSizes.map((_, i) => gridPath(meta, 'fine', i)),
  ];
}
