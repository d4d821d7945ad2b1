/**
 * The load scenarios' processes: the real API (`node apps/api/dist/server.js`) and real workers
 * (`node apps/worker/dist/main.js`), started as the start scripts start them, each logging to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { API_NODE_ARGS, WORKER_NODE_ARGS, workerEnv } from '@triage/queue';
import { queueOf, untilWorkersRegister } from '../prefix.js';
import { stopChild } from '../proc.js';
import { sleep } from '../util.js';
import { API_PREFIX, type LoadContext, type Service } from './service.js';

export interface Proc {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** The last lines the process wrote (its log goes to a file, not through a pipe to this process). */
  tail(): string;
  stop(): Promise<void>;
}

function startProcess(
  script: string,
  env: Record<string, string>,
  logFile: string,
  nodeArgs: readonly string[] = [],
): Proc {
  // Output to a file: a pipe would make this process read every log line, on the same two cores.
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = once(child, 'exit');
  return {
    child,
    pid: child.pid!,
    logFile,
    tail: () => {
      try {
        return readFileSync(logFile, 'utf8').slice(-3000);
      } catch {
        return '';
      }
    },
    stop: () => stopChild(child, exited),
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

export interface Api extends Proc {
  base: string;
}

/** `nodeArgs`: e.g. ['--cpu-prof'] to see where a route's time goes. */
export async function startApi(
  ctx: LoadContext,
  svc: Service,
  extra: Record<string, string> = {},
  nodeArgs: readonly string[] = [],
  script?: string,
): Promise<Api> {
  const port = await freePort();
  await mkdir(join(ctx.workDir, 'logs'), { recursive: true });
  const proc = startProcess(
    script ?? ctx.apiScript ?? join(ctx.repoRoot, 'apps/api/dist/server.js'),
    {
      REDIS_URL: ctx.redisUrl,
      TRIAGE_PREFIX: svc.prefix,
      STORAGE_DIR: svc.storageDir,
      STORAGE_SIGNING_KEY: 'load-benchmark-signing-key-0123456789',
      HOST: '127.0.0.1',
      PORT: String(port),
      SUPABASE_JWT_SECRET: svc.secret,
      RATE_LIMIT_PER_MINUTE: '100000',
      MAX_ACTIVE_JOBS_PER_USER: '100',
      MALLOC_ARENA_MAX: '2',
      LOG_LEVEL: 'info',
      ...ctx.apiEnv,
      ...extra,
    },
    join(ctx.workDir, 'logs', `api-${svc.prefix}-${port}.log`),
    // Started as the start scripts start it, plus whatever a variant adds.
    [...API_NODE_ARGS, ...nodeArgs],
  );
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`the API exited at start:\n${proc.tail()}`);
    try {
      const res = await fetch(`${base}${API_PREFIX}/health`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the API did not answer within 30 s:\n${proc.tail()}`);
    await sleep(100);
  }
  return { ...proc, base };
}

export async function startWorkers(ctx: LoadContext, svc: Service, count: number): Promise<Proc[]> {
  await mkdir(join(ctx.workDir, 'logs'), { recursive: true });
  // Started the way every start script starts a worker: WORKER_NODE_ARGS and the malloc settings.
  const workers = Array.from({ length: count }, (_, i) =>
    startProcess(
      join(ctx.repoRoot, 'apps/worker/dist/main.js'),
      workerEnv({
        REDIS_URL: ctx.redisUrl,
        TRIAGE_PREFIX: svc.prefix,
        STORAGE_DIR: svc.storageDir,
        LOG_LEVEL: 'warn',
        ...ctx.workerEnv,
      }) as Record<string, string>,
      join(ctx.workDir, 'logs', `worker-${svc.prefix}-${i}.log`),
      WORKER_NODE_ARGS,
    ),
  );
  if (ctx.workerNice) for (const w of workers) setPriority(w.pid, ctx.workerNice);
  const queue = queueOf(svc);
  try {
    await untilWorkersRegister(queue, count, 30_000, {
      exited: () => {
        const dead = workers.find((w) => w.child.exitCode !== null);
        return dead ? `a worker exited at start:\n${dead.tail()}` : null;
      },
      timedOut: () => `${count} workers did not register within 30 s`,
    });
  } finally {
    await queue.close();
  }
  return workers;
}
