/**
 * What the API logs, and what never: request URLs with their query values masked (a signed storage URL's
 * signature, or a token a client put in the query, must never reach the logs), no request headers
 * (@fastify/multipart traces the whole header set, Authorization included), and one line per request from
 * the onResponse hook instead of Fastify's two.
 */
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';

/** Log fields that may carry credentials. */
const REDACTED_LOG_PATHS = [
  'busboyOptions.headers',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/** Query parameters whose values are worth logging; every other value is masked. */
const LOGGED_QUERY_PARAMS = new Set(['include']);

/** A request taking longer than this is logged, except the routes that stream for as long as they must. */
const SLOW_REQUEST_MS = 2000;
const STREAMING_ROUTE = /\/(events|download)$|^\/storage\//;

/** A request URL fit for the logs: the path, and the query with every value but the harmless ones masked. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      return LOGGED_QUERY_PARAMS.has(name) ? pair : `${name}=[REDACTED]`;
    });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

function serializeRequest(request: {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}) {
  return {
    method: request.method,
    url: loggableUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Fastify's logger options: a child of `logger` with the serializers and redactions above, or none. */
export function loggerOptions(
  logger: Logger | false | undefined,
): { loggerInstance: FastifyBaseLogger } | { logger: false } {
  if (!logger) return { logger: false };
  const child = logger.child(
    {},
    { serializers: { req: serializeRequest }, redact: { paths: REDACTED_LOG_PATHS, censor: '[REDACTED]' } },
  );
  return { loggerInstance: child as unknown as FastifyBaseLogger };
}

/**
 * Failures are logged by the error handler; a slow answer is worth a warning; every request is a debug line
 * (by its route pattern, never its URL: query strings carry signatures and tokens).
 */
export const requestLog = fp(async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '';
    const ms = Math.round(reply.elapsedTime);
    const line = { method: request.method, route, status: reply.statusCode, ms };
    if (ms >= SLOW_REQUEST_MS && !STREAMING_ROUTE.test(route)) request.log.warn(line, 'slow request');
    else request.log.debug(line, 'request completed');
  });
});
