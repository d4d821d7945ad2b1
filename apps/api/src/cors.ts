/**
 * Which browser origins may call the API. In local mode the webapp's dev server (Vite, any port) runs on the
 * same machine, so loopback origins are allowed without configuration; everywhere else only the listed
 * CORS_ORIGINS are, and none by default (the webapp then reaches the API same-origin, through a rewrite).
 */

/** http(s)://localhost, 127.0.0.1 or [::1], with any port or none. */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

export function isLoopbackOrigin(origin: string): boolean {
  return LOOPBACK_ORIGIN.test(origin);
}

export type OriginCheck = (origin: string | undefined, callback: (err: Error | null, allow: boolean) => void) => void;

/** @fastify/cors's `origin` option: the configured origins, plus loopback ones in local mode. */
export function allowedOrigins(configured: readonly string[], localMode: boolean): boolean | string[] | OriginCheck {
  if (configured.includes('*')) return true;
  if (!localMode) return configured.length > 0 ? [...configured] : false;
  const listed = new Set(configured);
  return (origin, callback) => callback(null, origin !== undefined && (listed.has(origin) || isLoopbackOrigin(origin)));
}

/** The start-up warning for a deployment whose browsers cannot call it cross-origin, or null. */
export function corsWarning(configured: readonly string[], localMode: boolean): string | null {
  if (localMode || configured.length > 0) return null;
  return (
    'CORS_ORIGINS is empty: browsers may call the API only from its own origin. A webapp served from another ' +
    'origin must reach it through a same-origin rewrite of /api/triage/*, or be listed in CORS_ORIGINS (see docs/deploy.md)'
  );
}
