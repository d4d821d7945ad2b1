/**
 * A private `redis-server` process: what `triage run` and `triage start` use when no Redis answers, and what
 * the tests that must stop, restart or configure Redis start for themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

export interface RedisServerOptions {
  /** The folder it works in (an append-only file goes there). */
  dir: string;
  /** Default: a free port. Give the old one to restart a server where its clients expect it. */
  port?: number;
  /** Default: `redis-server` from the PATH. */
  binary?: string;
  /** More command-line settings, e.g. `['--appendonly', 'yes']`. */
  args?: readonly string[];
  /** Run as a Sentinel with this configuration file (written by the caller; Sentinel rewrites it). */
  sentinelConfig?: string;
  timeoutMs?: number;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Stops it (SIGTERM by default; SIGKILL to imitate a crash) and waits until it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts redis-server on loopback, without snapshots, and resolves once it answers with its data loaded. */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const mode = options.sentinelConfig ? [options.sentinelConfig, '--sentinel'] : ['--save', ''];
  const child = spawn(
    options.binary ?? 'redis-server',
    [...mode, '--port', String(port), '--bind', '127.0.0.1', '--dir', options.dir, ...(options.args ?? [])],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {});
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    if (await answers(port)) return server;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await server.stop('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** PING answers and, where INFO is allowed, the data set (an append-only file) is loaded. */
async function answers(port: number): Promise<boolean> {
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    if ((await probe.ping()) !== 'PONG') return false;
    const persistence = await probe.info('persistence').catch(() => '');
    return !/loading:1/.test(persistence);
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
