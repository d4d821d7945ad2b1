/** What the routes of /api/triage share: their options, OpenAPI tags and security, and when a job has ended. */
import type { Queue } from 'bullmq';
import type { preHandlerAsyncHookHandler } from 'fastify';
import { TERMINAL_STATUSES, type JobStatus } from '@triage/core';
import type { HandOffJobData } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import type { EventHub } from '../events.js';
import type { JobDeps } from '../jobs.js';

export interface TriageRouteOptions extends JobDeps {
  storage: StorageDriver;
  handoffQueue: Queue<HandOffJobData>;
  events: EventHub;
  version: string;
  authMode: string;
  /** Comment lines keep an idle events stream open through proxies. */
  heartbeatMs: number;
  /** How long DELETE waits for a running job's worker to stop. */
  cancelWaitMs: number;
  /** The per-user rate limit of job creation, shared by the job-creating routes (a preHandler hook). */
  createLimit: preHandlerAsyncHookHandler;
}

export const tags = ['triage'];
export const security = [{ bearer: [] }];

/** How long subscribing to a triage's events may take before Redis counts as away. */
export const SUBSCRIBE_DEADLINE_MS = 5000;

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}
