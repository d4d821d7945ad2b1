/**
 * Bull Board, as one encapsulated plugin with its own basic-auth hook. Its base path equals the register
 * prefix (or its assets 404). Read-only unless configured otherwise. Job data holds ids, names and object
 * paths only (see @triage/queue), so nothing shown here is a secret or a signed URL.
 *
 * The page asks nothing of any other server: Bull Board's template links a web font from an external font
 * service, which is dropped (its stylesheet falls back to the system's sans-serif and monospace fonts), and a
 * Content-Security-Policy keeps every request on this origin.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_PATH } from './paths.js';
import type { DashboardSettings } from './settings.js';

export { DASHBOARD_PATH };

function same(a: string, b: string): boolean {
  // Hash first so that the comparison takes the same time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function checkBasicAuth(header: string | undefined, settings: DashboardSettings): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userOk = same(decoded.slice(0, colon), settings.user);
  const passwordOk = same(decoded.slice(colon + 1), settings.password);
  return userOk && passwordOk;
}

/** Stylesheets and scripts the template loads from another origin. */
const EXTERNAL_ASSET =
  /<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*|<script\b[^>]*\bsrc="(?:https?:)?\/\/[^"]*"[^>]*>\s*<\/script>\s*/gi;

/** Only this origin; inline styles (the loading screen) and data: images (the UI's icons) allowed. */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

export function withoutExternalAssets(html: string): string {
  return html.replace(EXTERNAL_ASSET, '');
}

/**
 * The job's name as listed: the triage's step ("Coarse selection: grid 3/17") and its grids. Each grid is one
 * start of the BullMQ job, so the board's "N started" counts grids, not retries: the name says so.
 */
export function describeJob(job: { name?: string; progress?: unknown }): string {
  const p = job.progress as { message?: unknown; grids_done?: unknown; grids_total?: unknown } | undefined;
  const name = job.name ?? '';
  if (!p || typeof p !== 'object' || typeof p.message !== 'string') return name;
  return `${name} · ${p.message} · ${String(p.grids_done)} of ${String(p.grids_total)} grids (one start per grid)`;
}

export async function dashboardPlugin(
  app: FastifyInstance,
  options: { settings: DashboardSettings; queues: Queue[] },
): Promise<void> {
  const { settings } = options;
  app.addHook('onRequest', async (request, reply) => {
    if (!checkBasicAuth(request.headers.authorization, settings)) {
      reply.header('WWW-Authenticate', 'Basic realm="triage dashboard", charset="UTF-8"');
      await reply.code(401).send({ detail: 'Dashboard credentials required' });
    }
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', DASHBOARD_CSP);
    const type = String(reply.getHeader('content-type') ?? '');
    return typeof payload === 'string' && type.startsWith('text/html') ? withoutExternalAssets(payload) : payload;
  });
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const adapters = options.queues.map((q) => {
    const adapter = new BullMQAdapter(q, { readOnlyMode: settings.readOnly });
    adapter.setFormatter('name', describeJob);
    return adapter;
  });
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Photo triage' } },
  });
  await app.register(serverAdapter.registerPlugin());
}
