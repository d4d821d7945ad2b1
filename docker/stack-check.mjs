#!/usr/bin/env node
// What `npm run test:stack` proves against the running compose stack (started by docker/test-stack.sh, which
// passes its settings in STACK_* variables): everything from outside the containers, through the API's HTTP
// routes with verified tokens, Redis, the Docker engine and the kernel's own accounting in /proc and
// /sys/fs/cgroup. Any failed check stops the run with a message naming what was expected and what was found.
//
//   1. Redis as BullMQ needs it (AOF, noeviction); two workers beating; each process started as the README's
//      manual start (packages/queue/src/runtime.ts) and not as root.
//   2. The webapp's flow: start-from-storage, status until completed, results, ZIP, delete; forged tokens refused.
//   3. A 2,000-photo two-pass job; each worker container's memory peak read from its memory cgroup.
//   4. The same photos again with `docker-compose restart redis` and one worker replica killed (SIGKILL)
//      mid-job: completed, with the same picks, the survivor recording the grids after the kill.
//   5. The images: size, user, no secrets, no development dependencies, no test code or data.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chownSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { generateSampleSet } from '@triage/images';
import { API_NODE_ARGS, WORKER_MALLOC_ENV, WORKER_NODE_ARGS } from '@triage/queue';
import { ensureCorpus } from '../apps/bench/dist/corpus.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = (name) => process.env[name] ?? fail(`${name} is not set: run this through docker/test-stack.sh`);
const RUN = env('STACK_RUN_DIR');
const API = `http://127.0.0.1:${env('STACK_API_PORT')}`;
const REDIS_URL = `redis://127.0.0.1:${env('STACK_REDIS_PORT')}`;
const STORAGE = env('STACK_STORAGE_DIR');
const PROJECT = env('STACK_PROJECT');
const COMPOSE = env('STACK_COMPOSE').split(' ');
const PREFIX = 'triage';
const BUCKET = 'photos';
const BIG_JOB = 2000;
const UNIQUE = 200;
const MEMORY_BUDGET = 192 * 1024 * 1024;
const MEMORY_LIMIT = 512 * 1024 * 1024;
const NODE_UID = 1000;
const figures = [];

function fail(message) {
  throw new Error(message);
}
function check(ok, message) {
  if (!ok) fail(message);
}
function log(line) {
  console.log(`[stack ${new Date().toISOString().slice(11, 19)}] ${line}`);
}
function figure(line) {
  figures.push(line);
  log(line);
}
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
const compose = (...args) => sh(COMPOSE[0], [...COMPOSE.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

// --- the engine's view -------------------------------------------------------------------------------

function containers(service) {
  const ids = sh('docker', [
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=${PROJECT}`,
    '--filter',
    `label=com.docker.compose.service=${service}`,
  ]);
  return ids.trim().split('\n').filter(Boolean).map(inspect);
}
function inspect(id) {
  return JSON.parse(sh('docker', ['inspect', id]))[0];
}

/** The host pid of the Node process a container's tini started (tini is the container's init). */
function nodePid(container) {
  const tini = container.State.Pid;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === tini && readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'node') return Number(entry);
    } catch {
      // the process ended meanwhile
    }
  }
  fail(`no node process under ${container.Name}'s init (pid ${tini})`);
}

/** The container's memory cgroup as the kernel keeps it: v1 max_usage_in_bytes, or v2 memory.peak. */
function memoryOf(container) {
  const lines = readFileSync(`/proc/${container.State.Pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const read = (file) => readFileSync(file, 'utf8').trim();
  if (v1) {
    const dir = join('/sys/fs/cgroup/memory', v1.split(':').slice(2).join(':'));
    const stat = Object.fromEntries(
      read(join(dir, 'memory.stat'))
        .split('\n')
        .map((l) => l.split(' ')),
    );
    return {
      file: join(dir, 'memory.max_usage_in_bytes'),
      peak: Number(read(join(dir, 'memory.max_usage_in_bytes'))),
      limit: Number(read(join(dir, 'memory.limit_in_bytes'))),
      stat,
    };
  }
  const dir = join('/sys/fs/cgroup', lines.find((l) => l.startsWith('0::')).slice(3));
  const stat = Object.fromEntries(
    read(join(dir, 'memory.stat'))
      .split('\n')
      .map((l) => l.split(' ')),
  );
  return {
    file: join(dir, 'memory.peak'),
    peak: Number(read(join(dir, 'memory.peak'))),
    limit: Number(read(join(dir, 'memory.max'))),
    stat,
  };
}

// --- the API, as the webapp speaks to it ---------------------------------------------------------------

async function token(user, secret = env('STACK_JWT_SECRET')) {
  return new SignJWT({ role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(secret));
}

async function api(user, path, { method = 'GET', body, bearer } = {}) {
  const headers = { authorization: `Bearer ${bearer ?? (await token(user))}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${API}/api/triage${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function json(res, expected, what) {
  const text = await res.text();
  check(res.status === expected, `${what}: expected HTTP ${expected}, got ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** Polls the status every 2 s, as the webapp does, until the job ends; calls `each` with every status. */
async function untilDone(user, jobId, { timeoutMs, each = () => {} }) {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  for (;;) {
    const res = await api(user, `/${jobId}/status`);
    if (res.status === 503) {
      // Redis is away (restarted on purpose): the API says so at once, as documented; ask again.
      untilDone.unavailable = (untilDone.unavailable ?? 0) + 1;
      check(Date.now() < deadline, `the API still answers 503 after ${timeoutMs / 60000} min: ${await res.text()}`);
      await sleep(2000);
      continue;
    }
    const s = await json(res, 200, 'status');
    await each(s);
    if (['completed', 'failed', 'cancelled'].includes(s.status)) return s;
    check(
      Date.now() < deadline,
      `job ${jobId} still ${s.status} after ${timeoutMs / 60000} min (${s.grids_done}/${s.grids_total} grids)`,
    );
    if (Date.now() - last > 60_000) {
      last = Date.now();
      log(`  ${s.status}: ${s.grids_done}/${s.grids_total} grids`);
    }
    await sleep(2000);
  }
}

/** Places files where the webapp's uploads land (triage/{user}/{job}/), owned by the containers' user. */
function stage(user, jobId, files, place) {
  const dir = join(STORAGE, BUCKET, 'triage', user, jobId);
  mkdirSync(dir, { recursive: true });
  const out = files.map((f) => {
    const target = join(dir, f.name);
    place(f.path, target);
    return { original_name: f.name, storage_path: `triage/${user}/${jobId}/${f.name}`, size: statSync(target).size };
  });
  for (let d = dir; d.startsWith(join(STORAGE, BUCKET)); d = dirname(d)) chownSync(d, NODE_UID, NODE_UID);
  return { dir, files: out };
}

// --- 1. the stack as started ------------------------------------------------------------------------------

async function checkStarted(redis) {
  const config = Object.fromEntries(chunk(await redis.config('GET', '*'), 2));
  check(config.appendonly === 'yes', `Redis appendonly is ${config.appendonly}, expected yes`);
  check(
    config['maxmemory-policy'] === 'noeviction',
    `Redis maxmemory-policy is ${config['maxmemory-policy']}, expected noeviction`,
  );
  log(`Redis: appendonly yes, appendfsync ${config.appendfsync}, maxmemory-policy noeviction`);

  const workers = containers('worker');
  check(workers.length === 2, `expected 2 worker containers, found ${workers.length}`);
  const beats = await redis.hgetall(`${PREFIX}:workers`);
  for (const w of workers) {
    const pid = nodePid(w);
    const id = Object.keys(beats).find((k) => k.endsWith(`:${pid}`));
    check(id, `no heartbeat from ${w.Name}'s worker (pid ${pid}) in ${PREFIX}:workers: ${Object.keys(beats)}`);
  }
  checkProcess(containers('api')[0], ['node', ...API_NODE_ARGS, 'apps/api/dist/server.js'], { MALLOC_ARENA_MAX: '2' });
  for (const w of workers)
    checkProcess(w, ['node', ...WORKER_NODE_ARGS, 'apps/worker/dist/main.js'], {
      MALLOC_ARENA_MAX: '2',
      ...WORKER_MALLOC_ENV,
    });
  log('API and 2 workers: started with the commands and memory settings of packages/queue/src/runtime.ts, as uid 1000');
}

function checkProcess(container, argv, wantedEnv) {
  const pid = nodePid(container);
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  check(
    JSON.stringify(cmdline) === JSON.stringify(argv),
    `${container.Name} runs ${JSON.stringify(cmdline)}, expected ${JSON.stringify(argv)}`,
  );
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1];
  check(Number(uid) === NODE_UID, `${container.Name}'s node process runs as uid ${uid}, expected ${NODE_UID} (node)`);
  const environ = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  for (const [k, v] of Object.entries(wantedEnv))
    check(environ[k] === v, `${container.Name}: ${k}=${environ[k]}, expected ${v}`);
  check(environ.NODE_ENV === 'production', `${container.Name}: NODE_ENV=${environ.NODE_ENV}`);
}

function chunk(list, n) {
  return Array.from({ length: list.length / n }, (_, i) => list.slice(i * n, i * n + n));
}

// --- 2. the webapp's flow ------------------------------------------------------------------------------------

async function webappFlow() {
  const user = `stack-flow-${randomUUID().slice(0, 8)}`;
  const jobId = randomUUID();
  const generated = join(RUN, 'samples');
  const samples = await generateSampleSet(generated, { count: 30, width: 1200, height: 900 });
  const { dir, files } = stage(user, jobId, samples, (from, to) => writeFileSync(to, readFileSync(from)));
  const body = { job_id: jobId, files, target: '20%', criteria: 'standout', passes: 2 };

  await json(
    await api(user, '/start-from-storage', {
      method: 'POST',
      body,
      bearer: await token(user, 'not-the-secret-'.repeat(4)),
    }),
    401,
    'a token signed with another secret',
  );
  const res401 = await fetch(`${API}/api/triage/active`);
  check(res401.status === 401, `no token: expected 401, got ${res401.status}`);
  const started = await json(
    await api(user, '/start-from-storage', { method: 'POST', body }),
    200,
    'start-from-storage',
  );
  check(started.photo_count === 30, `photo_count ${started.photo_count}, expected 30`);
  await json(await api('someone-else', `/${jobId}/status`), 404, "another user's job");

  const t0 = Date.now();
  const final = await untilDone(user, jobId, { timeoutMs: 15 * 60_000 });
  check(final.status === 'completed', `webapp job ended ${final.status}: ${final.error_message ?? ''}`);
  const results = await json(await api(user, `/${jobId}/results?include=all`), 200, 'results');
  check(results.photos.length === 30, `results list ${results.photos.length} photos, expected 30`);
  check(
    results.selected_photos.length > 0 && results.selected_photos.length === results.final_selected,
    'picks missing from the results',
  );
  const thumb = await fetch(results.selected_photos[0].thumbnail_url);
  const head = Buffer.from(await thumb.arrayBuffer()).subarray(0, 3);
  check(thumb.status === 200 && head.equals(Buffer.from([0xff, 0xd8, 0xff])), `signed thumbnail URL: ${thumb.status}`);

  const zip = await api(user, `/${jobId}/download`);
  check(zip.status === 200, `download: ${zip.status}`);
  const zipPath = join(RUN, 'picks.zip');
  writeFileSync(zipPath, Buffer.from(await zip.arrayBuffer()));
  const entries = sh('unzip', ['-Z1', zipPath]).trim().split('\n');
  check(
    entries.length === results.selected_photos.length,
    `ZIP holds ${entries.length} files, ${results.selected_photos.length} picked`,
  );
  check(/No errors detected/.test(sh('unzip', ['-t', zipPath])), 'the ZIP does not test clean');

  await json(await api(user, `/${jobId}`, { method: 'DELETE' }), 200, 'delete');
  check(readdirSync(dir).length === 0, `after DELETE, ${readdirSync(dir).length} photos remain in storage`);
  await json(await api(user, `/${jobId}/status`), 404, 'status after delete');
  const failed = results.photos.filter((p) => p.fate === 'failed').length;
  figure(
    `webapp flow: 30 photos, ${results.selected_photos.length} picked, ${failed} unreadable on purpose; completed in ${((Date.now() - t0) / 1000).toFixed(0)} s; ZIP ${entries.length} files; deleted`,
  );
}

// --- 3. and 4. the 2,000-photo jobs --------------------------------------------------------------------------

async function corpus() {
  const { files, skippedHeic } = await ensureCorpus(join(ROOT, '.bench/corpus'), UNIQUE, { log });
  check(skippedHeic === 0, `${skippedHeic} HEIC photos left out: apt-get install -y libheif-examples (heif-enc)`);
  // Read once from the host: on cgroup v1 a page of the file cache is charged to the first reader, so the
  // photos' cache is the host's, and the workers' accounting shows their own memory (see docs/deploy.md).
  for (const f of files) await readFile(f.path);
  return Array.from({ length: BIG_JOB }, (_, i) => ({
    name: `${String(i).padStart(4, '0')}-${files[i % files.length].name}`,
    path: files[i % files.length].path,
  }));
}

async function startBig(photos, label) {
  const user = `stack-${label}-${randomUUID().slice(0, 8)}`;
  const jobId = randomUUID();
  const { files } = stage(user, jobId, photos, (from, to) => linkSync(from, to));
  const started = await json(
    await api(user, '/start-from-storage', {
      method: 'POST',
      body: { job_id: jobId, files, target: '10%', criteria: 'standout', passes: 2 },
    }),
    200,
    `start ${label}`,
  );
  check(started.photo_count === BIG_JOB, `photo_count ${started.photo_count}`);
  return { user, jobId, t0: Date.now() };
}

async function picksOf(job) {
  const results = await json(await api(job.user, `/${job.jobId}/results`), 200, 'results');
  return results.selected_photos.map((p) => p.original_filename);
}

async function bigJob(photos) {
  const job = await startBig(photos, 'big');
  log(`2,000-photo job ${job.jobId}: started`);
  const final = await untilDone(job.user, job.jobId, { timeoutMs: 60 * 60_000 });
  check(final.status === 'completed', `2,000-photo job ended ${final.status}: ${final.error_message ?? ''}`);
  const seconds = (Date.now() - job.t0) / 1000;
  const results = await json(await api(job.user, `/${job.jobId}/results`), 200, 'results');
  figure(
    `2,000-photo two-pass job: ${final.grids_total} grids, ${results.pass1_survivors} survivors, ${results.final_selected} picked, ${final.photos_failed ?? 0} failed, ${seconds.toFixed(0)} s`,
  );
  for (const w of containers('worker')) {
    const m = memoryOf(w);
    check(
      m.limit === MEMORY_LIMIT,
      `${w.Name}: memory limit ${m.limit}, expected ${MEMORY_LIMIT} (compose mem_limit 512m)`,
    );
    figure(
      `${w.Name.slice(1)}: cgroup peak ${mb(m.peak)} (limit ${mb(m.limit)}; now rss ${mb(Number(m.stat.total_rss ?? m.stat.anon))}, cache ${mb(Number(m.stat.total_cache ?? m.stat.file))}) (${m.file.split('/').at(-1)} of its memory cgroup)`,
    );
    check(
      m.peak < MEMORY_BUDGET,
      `${w.Name}: the kernel counted a ${mb(m.peak)} peak, above the ${mb(MEMORY_BUDGET)} budget`,
    );
  }
  return picksOf(job);
}

/** The worker id (`host:pid`) that recorded the job's newest grid, and how many grids are recorded. */
async function newestGrid(redis, jobId) {
  const records = Object.values(await redis.hgetall(`${PREFIX}:t:${jobId}:grids`)).map((r) => JSON.parse(r));
  records.sort((a, b) => a.finishedAt - b.finishedAt);
  return { count: records.length, newest: records.at(-1), records };
}

async function disturbedJob(redis, photos, undisturbed) {
  const job = await startBig(photos, 'disturbed');
  log(`2,000-photo job ${job.jobId}: started again, to be disturbed`);
  let phase = 'redis';
  let killedAt = 0;
  let victim = null;
  const final = await untilDone(job.user, job.jobId, {
    timeoutMs: 60 * 60_000,
    each: async (s) => {
      if (phase === 'redis' && s.grids_done >= 3) {
        phase = 'after-redis';
        const t = Date.now();
        compose('restart', 'redis');
        figure(
          `docker-compose restart redis at grid ${s.grids_done}/${s.grids_total}: ${((Date.now() - t) / 1000).toFixed(1)} s`,
        );
        await redis.ping();
      } else if (phase === 'after-redis' && s.grids_done >= 8) {
        phase = 'killed';
        const { newest } = await newestGrid(redis, job.jobId);
        const pid = Number(newest.worker.split(':').at(-1));
        victim = containers('worker').find((w) => nodePid(w) === pid) ?? containers('worker')[0];
        killedAt = Date.now();
        sh('docker', ['kill', '--signal', 'KILL', victim.Id]);
        figure(
          `SIGKILL to ${victim.Name.slice(1)} (which recorded the newest grid) at grid ${s.grids_done}/${s.grids_total}`,
        );
      }
    },
  });
  check(phase === 'killed', `the job ended before both disruptions (${phase})`);
  check(final.status === 'completed', `disturbed job ended ${final.status}: ${final.error_message ?? ''}`);
  const { records } = await newestGrid(redis, job.jobId);
  const after = records.filter((r) => r.finishedAt > killedAt);
  check(after.length > 0, 'no grid recorded after the kill');
  const takers = [...new Set(after.map((r) => r.worker))];
  const survivor = containers('worker').filter((w) => w.Id !== victim.Id);
  check(survivor.length === 1, `expected the other worker replica alone to run, found ${survivor.length}`);
  check(
    takers.every((t) => t.endsWith(`:${nodePid(survivor[0])}`)),
    `grids after the kill recorded by ${takers}, not by ${survivor[0].Name}`,
  );
  figure(
    `after the kill: ${after.length} grids recorded by ${survivor[0].Name.slice(1)}; completed in ${((Date.now() - job.t0) / 1000).toFixed(0)} s; ${untilDone.unavailable ?? 0} status polls answered 503 while Redis restarted`,
  );
  const picks = await picksOf(job);
  check(
    JSON.stringify(picks) === JSON.stringify(undisturbed),
    `picks differ from the undisturbed run: ${picks.length} vs ${undisturbed.length}`,
  );
  figure(`same ${picks.length} picks, in the same order, as the undisturbed run`);
  return victim;
}

// --- 5. the images ----------------------------------------------------------------------------------------------

function devPackages() {
  const lock = JSON.parse(readFileSync(join(RUN, 'src/package-lock.json'), 'utf8'));
  return Object.entries(lock.packages)
    .filter(([path, p]) => p.dev && path.startsWith('node_modules/'))
    .map(([path]) => path);
}

/** Every path in image `image`, from a container created (never started) from it and exported. */
function imageFiles(image) {
  const id = sh('docker', ['create', image]).trim();
  try {
    const listing = sh('sh', ['-c', `docker export ${id} | tar -t`]);
    return new Set(
      listing
        .split('\n')
        .filter(Boolean)
        .map((p) => p.replace(/\/$/, '')),
    );
  } finally {
    sh('docker', ['rm', id]);
  }
}

function checkImage(image, dev) {
  const meta = inspect(image);
  check(meta.Config.User === 'node', `${image} runs as '${meta.Config.User}', expected node`);
  const secretEnv = meta.Config.Env.filter((e) => /SECRET|PASSWORD|TOKEN|_KEY=/.test(e));
  check(secretEnv.length === 0, `${image} carries ${secretEnv.join(', ')}`);
  const files = imageFiles(image);
  const app = [...files].filter((p) => p.startsWith('app/'));
  const canary = app.filter((p) =>
    /(^|\/)\.env(\.(?!example$)[^/]*)?$|\.npmrc$|\.pem$|(^|\/)\.(bench|triage|stack|git)(\/|$)/.test(p),
  );
  check(canary.length === 0, `${image} holds ${canary.slice(0, 5).join(', ')}`);
  const devIn = dev.filter((p) => files.has(`app/${p}`));
  check(devIn.length === 0, `${image} holds ${devIn.length} development packages: ${devIn.slice(0, 5).join(', ')}`);
  const tests = app.filter(
    (p) =>
      !p.startsWith('app/node_modules/') &&
      /\.test\.|(^|\/)(test|testing|fixtures|src)(\/|$)|test-fixtures|\.(jpe?g|png|webp|heic|heif|tiff?|zip)$/i.test(p),
  );
  check(tests.length === 0, `${image} holds test code, sources or data: ${tests.slice(0, 8).join(', ')}`);
  figure(
    `${image}: ${mb(meta.Size)} (${app.length} files in /app), user node, no secrets, no development packages (${dev.length} in the lockfile), no tests or test data`,
  );
}

// --- main ------------------------------------------------------------------------------------------------------

async function main() {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  try {
    await checkStarted(redis);
    await webappFlow();
    const photos = await corpus();
    const undisturbed = await bigJob(photos);
    await disturbedJob(redis, photos, undisturbed);
    const dev = devPackages();
    for (const image of ['photo-triage-api:latest', 'photo-triage-worker:latest']) checkImage(image, dev);
  } finally {
    redis.disconnect();
  }
  console.log(`\nFigures (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC):`);
  for (const f of figures) console.log(`  ${f}`);
}

main().catch((err) => {
  console.error(`[stack] FAILED: ${err.message}`);
  process.exit(1);
});
