#!/usr/bin/env node
// Container health checks (Dockerfile HEALTHCHECK and docker-compose.yml):
//
//   node docker/healthcheck.mjs api      the API's /readyz answers 200 (the process serves, Redis answers, storage usable)
//   node docker/healthcheck.mjs worker   a worker process of this container wrote its heartbeat to Redis
//                                        within HEALTHCHECK_MAX_AGE_MS (default 35 s; workers beat every 10 s)
//
// No dependencies on purpose: the check runs inside the worker's container, so its memory counts against
// the worker's limit; plain Node with a few lines of RESP costs far less than loading ioredis and BullMQ.
// Exit 0 = healthy, 1 = unhealthy; the reason is printed (`docker inspect` shows it).
import { connect as netConnect } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';

const TIMEOUT_MS = 4000;

function done(ok, message) {
  console.log(message);
  process.exit(ok ? 0 : 1);
}

async function checkApi() {
  const host = process.env.HOST?.trim() || '127.0.0.1';
  const local = ['0.0.0.0', '::', '[::]', ''].includes(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${local}:${process.env.PORT?.trim() || '8000'}/readyz`;
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = await res.text();
  done(res.status === 200, `${url}: ${res.status} ${body.slice(0, 200)}`);
}

// --- a minimal Redis client: send a few commands, read as many replies (RESP2) ---

function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

/** One reply from `buf` at `at`: [value, next offset], or null when more bytes are needed. */
function parse(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  if (type === '+') return [line, next];
  if (type === '-') return [new Error(line), next];
  if (type === ':') return [Number(line), next];
  if (type === '$') {
    const len = Number(line);
    if (len < 0) return [null, next];
    if (buf.length < next + len + 2) return null;
    return [buf.toString('utf8', next, next + len), next + len + 2];
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const items = [];
    let pos = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, pos);
      if (!r) return null;
      items.push(r[0]);
      pos = r[1];
    }
    return [items, pos];
  }
  throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
}

function redisCommands(redisUrl, commands) {
  const u = new URL(redisUrl);
  const secure = u.protocol === 'rediss:';
  const port = Number(u.port || 6379);
  const pre = [];
  const password = decodeURIComponent(u.password);
  const username = decodeURIComponent(u.username);
  if (password) pre.push(username ? ['AUTH', username, password] : ['AUTH', password]);
  const db = u.pathname.replace(/^\//, '');
  if (db && db !== '0') pre.push(['SELECT', db]);
  const all = [...pre, ...commands];
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tlsConnect({ host: u.hostname, port, servername: u.hostname })
      : netConnect({ host: u.hostname, port });
    const timer = setTimeout(
      () => socket.destroy(new Error(`Redis did not answer within ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
    let buf = Buffer.alloc(0);
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(all.map(encode).join('')));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const replies = [];
      let pos = 0;
      for (let i = 0; i < all.length; i++) {
        const r = parse(buf, pos);
        if (!r) return; // wait for more
        replies.push(r[0]);
        pos = r[1];
      }
      clearTimeout(timer);
      socket.end();
      const failed = replies.find((r) => r instanceof Error);
      if (failed) reject(failed);
      else resolve(replies.slice(pre.length));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const env = (name) => process.env[name]?.trim() || '';

/** A data node's URL from host:port and the Sentinel/Cluster credentials (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS). */
function nodeUrl(hostPort, password = env('REDIS_PASSWORD'), username = env('REDIS_USERNAME')) {
  const u = new URL(`${env('REDIS_TLS') === 'on' ? 'rediss' : 'redis'}://${hostPort}`);
  if (password) u.password = password;
  if (username) u.username = username;
  return u.toString();
}

/** The first of `hostPorts` that answers `fn`, or the last error. */
async function firstAnswer(hostPorts, fn) {
  let last = new Error('no node listed');
  for (const hp of hostPorts
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    try {
      return await fn(hp);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** One command against whichever kind of Redis is configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES). */
async function redisCommand(command) {
  if (env('REDIS_SENTINELS')) {
    const [host, port] = await firstAnswer(env('REDIS_SENTINELS'), async (hp) => {
      const [addr] = await redisCommands(nodeUrl(hp, env('REDIS_SENTINEL_PASSWORD'), ''), [
        ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', env('REDIS_SENTINEL_NAME')],
      ]);
      if (!Array.isArray(addr)) throw new Error(`no master named ${env('REDIS_SENTINEL_NAME')}`);
      return addr;
    });
    return (await redisCommands(nodeUrl(`${host}:${port}`), [command]))[0];
  }
  if (env('REDIS_CLUSTER_NODES')) {
    return firstAnswer(env('REDIS_CLUSTER_NODES'), async (hp) => {
      try {
        return (await redisCommands(nodeUrl(hp), [command]))[0];
      } catch (err) {
        const moved = /^MOVED \d+ (\S+)$/.exec(err.message);
        if (!moved) throw err;
        return (await redisCommands(nodeUrl(moved[1]), [command]))[0];
      }
    });
  }
  return (await redisCommands(env('REDIS_URL') || 'redis://127.0.0.1:6379', [command]))[0];
}

async function checkWorker() {
  const prefix = process.env.TRIAGE_PREFIX?.trim() || 'triage';
  const maxAgeMs = Number(process.env.HEALTHCHECK_MAX_AGE_MS || 35_000);
  // The heartbeats: hash `${prefix}:workers` (workersKey in packages/queue/src/contract.ts), field `host:pid`.
  const flat = await redisCommand(['HGETALL', `${prefix}:workers`]);
  const me = `${hostname()}:`;
  let newest = null;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (!flat[i].startsWith(me)) continue;
    try {
      const at = JSON.parse(flat[i + 1]).at;
      if (typeof at === 'number' && (newest === null || at > newest)) newest = at;
    } catch {
      // a malformed entry is no heartbeat
    }
  }
  if (newest === null) done(false, `no heartbeat from ${me}* in ${prefix}:workers`);
  const age = Date.now() - newest;
  done(age <= maxAgeMs, `last heartbeat ${Math.round(age / 1000)} s ago (limit ${Math.round(maxAgeMs / 1000)} s)`);
}

const what = process.argv[2];
const check = what === 'api' ? checkApi : what === 'worker' ? checkWorker : null;
if (!check) done(false, 'usage: node docker/healthcheck.mjs api|worker');
check().catch((err) => done(false, `unhealthy: ${err?.message ?? err}`));
