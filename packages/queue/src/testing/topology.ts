/**
 * Redis as operators run it, on loopback, for the tests that kill a master: a master with a replica watched
 * by three Sentinels, and a Cluster of three masters with a replica each. Every step waits for the state it
 * needs (replica in sync, Sentinels agreeing, cluster state ok, a replica promoted), each with a deadline;
 * nothing sleeps for a fixed time.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisConnection, type RedisTarget } from '../redis.js';
import { freePort, startRedisServer, type RedisServer } from '../redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value, or fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await sleep(everyMs);
  }
}

/** Runs one command on one node (a data node or a Sentinel) and disconnects. */
export async function nodeCommand(port: number, ...args: (string | number)[]): Promise<unknown> {
  const client = redisConnection({ kind: 'single', url: `redis://127.0.0.1:${port}`, explicit: true }, 'producer', {
    lazyConnect: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

/** `INFO section` of one node as a map. */
async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = String(await nodeCommand(port, 'INFO', section));
  return new Map(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}

export interface Topology {
  /** How the processes reach it, as settings (REDIS_SENTINELS… or REDIS_CLUSTER_NODES). */
  env: Record<string, string>;
  target: RedisTarget;
  /** Every data node, by port. */
  nodes: Map<number, RedisServer>;
  /** Kills (SIGKILL) the master that holds `key`; resolves with its port once it has exited. */
  killMasterOf(key: string): Promise<number>;
  /** Resolves with the port of the master that serves `key` once it is not `oldPort` (and the Cluster state is ok). */
  promoted(key: string, oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

async function replicaInSync(replicaPort: number): Promise<boolean> {
  const r = await info(replicaPort, 'replication');
  return r.get('master_link_status') === 'up' && r.get('master_sync_in_progress') === '0';
}

/** A master, one replica in sync, and three Sentinels that all see both and each other. */
export async function startSentinelSet(name = 'triage', downAfterMs = 2000): Promise<Topology> {
  const dir = await mkdtemp(join(tmpdir(), 'triage-sentinel-'));
  const nodes = new Map<number, RedisServer>();
  const sentinels: RedisServer[] = [];
  const stop = async () => {
    for (const s of [...sentinels, ...nodes.values()]) await s.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const master = await startRedisServer({ dir: await sub(dir, 'master'), args: ['--appendonly', 'no'] });
    nodes.set(master.port, master);
    const replica = await startRedisServer({
      dir: await sub(dir, 'replica'),
      args: ['--replicaof', '127.0.0.1', String(master.port)],
    });
    nodes.set(replica.port, replica);
    await waitFor('the replica to sync', () => replicaInSync(replica.port));
    for (let i = 0; i < 3; i++) {
      const sdir = await sub(dir, `sentinel-${i}`);
      const config = join(sdir, 'sentinel.conf');
      await writeFile(
        config,
        [
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await startRedisServer({ dir: sdir, sentinelConfig: config }));
    }
    for (const s of sentinels) {
      await waitFor(
        `Sentinel ${s.port} to see the replica and the other Sentinels`,
        async () => {
          const flat = (await nodeCommand(s.port, 'SENTINEL', 'MASTER', name)) as string[];
          const m = new Map<string, string>();
          for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!);
          return m.get('num-slaves') === '1' && m.get('num-other-sentinels') === '2' && m.get('flags') === 'master';
        },
        60_000,
      );
    }
    const list = sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
    const masterPort = async () =>
      Number(((await nodeCommand(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[])[1]);
    return {
      env: { REDIS_SENTINELS: list, REDIS_SENTINEL_NAME: name },
      target: {
        kind: 'sentinel',
        sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        name,
        tls: false,
      },
      nodes,
      async killMasterOf() {
        const port = await masterPort();
        await nodes.get(port)!.stop('SIGKILL');
        return port;
      },
      async promoted(_key, oldPort, timeoutMs = 60_000) {
        return waitFor(
          'a Sentinel failover',
          async () => {
            const port = await masterPort();
            if (port === oldPort) return undefined;
            return (await info(port, 'replication')).get('role') === 'master' ? port : undefined;
          },
          timeoutMs,
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function sub(dir: string, name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

interface ClusterNodeLine {
  port: number;
  master: boolean;
  failed: boolean;
  /** Slot ranges a master serves. */
  slots: [number, number][];
}

/** `CLUSTER NODES` as seen by one node. */
async function clusterNodes(port: number): Promise<ClusterNodeLine[]> {
  const text = String(await nodeCommand(port, 'CLUSTER', 'NODES'));
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(' ');
      const flags = f[2]!.split(',');
      return {
        port: Number(/:(\d+)@/.exec(f[1]!)![1]),
        master: flags.includes('master'),
        failed: flags.includes('fail') || flags.includes('fail?'),
        slots: f
          .slice(8)
          .filter((s) => /^\d/.test(s))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a!, b ?? a!] as [number, number];
          }),
      };
    });
}

/** Three masters with one replica each, every slot covered, every replica in sync, state ok everywhere. */
export async function startRedisCluster(nodeTimeoutMs = 2000): Promise<Topology> {
  const dir = await mkdtemp(join(tmpdir(), 'triage-cluster-'));
  const nodes = new Map<number, RedisServer>();
  const stop = async () => {
    for (const s of nodes.values()) await s.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const busPort = await freePort();
      const server = await startRedisServer({
        dir: await sub(dir, `node-${i}`),
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          '--appendonly',
          'no',
        ],
      });
      nodes.set(server.port, server);
    }
    const ports = [...nodes.keys()];
    await createCluster(ports);
    for (const port of ports) {
      await waitFor(
        `cluster state ok at ${port}`,
        async () => /cluster_state:ok/.test(String(await nodeCommand(port, 'CLUSTER', 'INFO'))),
        60_000,
      );
    }
    for (const port of ports) {
      if ((await info(port, 'replication')).get('role') === 'slave')
        await waitFor(`replica ${port} to sync`, () => replicaInSync(port), 60_000);
    }
    await waitFor(
      'every node to know three masters with a replica each',
      async () => {
        for (const port of ports) {
          const seen = await clusterNodes(port);
          if (
            seen.filter((n) => n.master && n.slots.length > 0).length !== 3 ||
            seen.filter((n) => !n.master).length !== 3
          )
            return false;
        }
        return true;
      },
      60_000,
    );
    const owner = async (key: string, askPort: number) => {
      const slot = Number(await nodeCommand(askPort, 'CLUSTER', 'KEYSLOT', key));
      const seen = await clusterNodes(askPort);
      return seen.find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b))?.port;
    };
    return {
      env: { REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(',') },
      target: { kind: 'cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })), tls: false },
      nodes,
      async killMasterOf(key) {
        const port = (await owner(key, ports[0]!))!;
        await nodes.get(port)!.stop('SIGKILL');
        return port;
      },
      async promoted(key, oldPort, timeoutMs = 60_000) {
        const alive = ports.filter((p) => p !== oldPort);
        return waitFor(
          'a Cluster failover',
          async () => {
            for (const port of alive) {
              if (!/cluster_state:ok/.test(String(await nodeCommand(port, 'CLUSTER', 'INFO')))) return undefined;
            }
            const port = await owner(key, alive[0]!);
            return port !== undefined && port !== oldPort && (await info(port, 'replication')).get('role') === 'master'
              ? port
              : undefined;
          },
          timeoutMs,
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, bounded. */
async function createCluster(ports: number[]): Promise<void> {
  const child = spawn(
    'redis-cli',
    ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}): ${out.slice(-2000)}`);
}
