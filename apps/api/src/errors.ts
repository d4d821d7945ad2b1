/** Errors a route throws to answer with a status and `{detail}`; and how a failure of Redis is recognised. */
import { isRedisUnavailable } from '@triage/queue';

export { withDeadline } from '@triage/queue';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
    /** Extra fields beside `detail` in the reply (e.g. the parts an upload skipped). */
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const JOB_NOT_FOUND = 'Triage job not found';
export const REDIS_DOWN = 'Service unavailable: the job store (Redis) is not answering; try again shortly';

export function jobNotFound(): HttpError {
  return new HttpError(404, JOB_NOT_FOUND);
}

/** ioredis and BullMQ failures that mean "Redis is away", not "this request is wrong". */
export const isRedisDown = isRedisUnavailable;
