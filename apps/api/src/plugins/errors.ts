/** Every failure as `{detail}` with its status: the routes' HttpErrors, bad tokens and input, storage and Redis outages. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TriageInputError } from '@triage/core';
import { InvalidPathError, StorageRequestError } from '@triage/storage';
import { AuthError } from '../auth.js';
import { HttpError, isRedisDown, REDIS_DOWN } from '../errors.js';

function replyToError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof HttpError) {
    return reply
      .code(error.statusCode)
      .headers(error.headers)
      .send({ detail: error.message, ...error.extra });
  }
  if (error instanceof AuthError) {
    return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ detail: error.message });
  }
  if (error instanceof TriageInputError) return reply.code(400).send({ detail: error.message });
  const err = error as { validation?: unknown; statusCode?: number; message?: string };
  if (err.validation) return reply.code(400).send({ detail: `Invalid request: ${err.message}` });
  if (error instanceof StorageRequestError) {
    // The storage's own words (never a key or a URL): the operator's fix, or the outage, is in them.
    request.log.error({ err: error.reason, setting: error.details.setting }, 'storage request failed');
    return reply.code(error.kind === 'refused' ? 400 : 503).send({ detail: `Storage: ${error.reason}` });
  }
  if (error instanceof InvalidPathError) return reply.code(400).send({ detail: error.message });
  if (isRedisDown(error)) {
    request.log.warn({ err: error.message }, 'Redis unavailable');
    return reply.code(503).send({ detail: REDIS_DOWN });
  }
  const code = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
  if (code >= 500) {
    request.log.error({ err: error }, 'request failed');
    return reply.code(code).send({ detail: 'Internal server error' });
  }
  return reply.code(code).send({ detail: err.message ?? 'Bad request' });
}

export const errorReplies = fp(async (app) => {
  app.setErrorHandler(replyToError);
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ detail: `Not found: ${request.method} ${request.url.split('?')[0]}` }),
  );
});
