/**
 * Bull Board, as one encapsulated plugin with its own basic-auth hook. Its base path equals the register
 * prefix (or its assets 404). Read-only unless configured otherwise. Job data holds ids, names and object
 * paths only (see @triage/queue), so nothing shown here is a secret or a signed URL.
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

export async function dashboardPlugin(app: FastifyInstance, options: { settings: DashboardSettings; queues: Queue[] }): Promise<void> {
  const { settings } = options;
  app.addHook('onRequest', async (request, reply) => {
    if (!checkBasicAuth(request.headers.authorization, settings)) {
      reply.header('WWW-Authenticate', 'Basic realm="triage dashboard", charset="UTF-8"');
      await reply.code(401).send({ detail: 'Dashboard credentials required' });
    }
  });
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: options.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: settings.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Photo triage' } },
  });
  await app.register(serverAdapter.registerPlugin());
}
