/**
 * Is the Redis we met configured as BullMQ needs? `maxmemory-policy noeviction` (otherwise Redis may drop a
 * job's keys to make room) and AOF on (otherwise a restart loses what was written since the last snapshot).
 * Processes call `warnAboutRedisConfig` once after connecting: it only logs, never throws, never blocks long.
 * Managed Redis often refuses CONFIG: then INFO is read instead, and when that is refused too, the warning
 * says the configuration could not be checked.
 */
import { withDeadline, type RedisClient } from './redis.js';

export interface RedisConfigReport {
  /** As Redis reports it, or null when it could not be read. */
  maxmemoryPolicy: string | null;
  /** True when AOF is on, or null when it could not be read. */
  aof: boolean | null;
  /** Where the values came from. */
  source: 'config' | 'info' | null;
  /** Empty when Redis is configured as BullMQ needs. */
  warnings: string[];
}

/** Any logger with pino's `warn(obj, msg)`. */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** `CONFIG GET name` → its value; throws when CONFIG is refused or the parameter is unknown. */
async function configGet(redis: RedisClient, name: string): Promise<string> {
  const reply = await redis.call('CONFIG', 'GET', name);
  // A flat [name, value] array (RESP2, or RESP3 with ioredis' default "legacy" mapping), or a map.
  if (Array.isArray(reply) && reply.length >= 2) return String(reply[1]);
  if (reply !== null && typeof reply === 'object' && name in reply)
    return String((reply as Record<string, unknown>)[name]);
  throw new Error(`CONFIG GET ${name} returned nothing`);
}

/** `INFO section` → its `field:value` lines as a map. */
async function info(redis: RedisClient, section: string): Promise<Map<string, string>> {
  const text = String(await redis.info(section));
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) fields.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return fields;
}

async function read(
  redis: RedisClient,
): Promise<Pick<RedisConfigReport, 'maxmemoryPolicy' | 'aof' | 'source'> & { refused?: string }> {
  let configError: string;
  try {
    const [policy, appendonly] = await Promise.all([
      configGet(redis, 'maxmemory-policy'),
      configGet(redis, 'appendonly'),
    ]);
    return { maxmemoryPolicy: policy, aof: appendonly === 'yes', source: 'config' };
  } catch (err) {
    configError = reason(err);
  }
  try {
    const [memory, persistence] = await Promise.all([info(redis, 'memory'), info(redis, 'persistence')]);
    const policy = memory.get('maxmemory_policy') ?? null;
    const aofEnabled = persistence.get('aof_enabled');
    if (policy !== null || aofEnabled !== undefined) {
      return { maxmemoryPolicy: policy, aof: aofEnabled === undefined ? null : aofEnabled === '1', source: 'info' };
    }
    return {
      maxmemoryPolicy: null,
      aof: null,
      source: null,
      refused: `CONFIG GET: ${configError}; INFO has neither maxmemory_policy nor aof_enabled`,
    };
  } catch (err) {
    return {
      maxmemoryPolicy: null,
      aof: null,
      source: null,
      refused: `CONFIG GET: ${configError}; INFO: ${reason(err)}`,
    };
  }
}

/** Reads the two settings and says what is wrong with them; never throws. */
export async function checkRedisConfig(redis: RedisClient, timeoutMs = 2000): Promise<RedisConfigReport> {
  let found: Awaited<ReturnType<typeof read>>;
  try {
    found = await withDeadline(read(redis), timeoutMs, 'checking the configuration');
  } catch (err) {
    found = { maxmemoryPolicy: null, aof: null, source: null, refused: reason(err) };
  }
  const { maxmemoryPolicy, aof, source } = found;
  const warnings: string[] = [];
  if (maxmemoryPolicy === null && aof === null) {
    warnings.push(
      `Could not check the Redis configuration (${found.refused ?? 'no answer'}): make sure it has ` +
        'maxmemory-policy noeviction and AOF on (appendonly yes), as BullMQ needs.',
    );
  } else {
    if (maxmemoryPolicy === null) {
      warnings.push('Could not check Redis maxmemory-policy: make sure it is noeviction, as BullMQ needs.');
    } else if (maxmemoryPolicy !== 'noeviction') {
      warnings.push(
        `Redis maxmemory-policy is ${maxmemoryPolicy}, not noeviction: when memory runs short Redis may evict ` +
          "queued jobs and triage records, and they are lost. Set maxmemory-policy noeviction (BullMQ's requirement).",
      );
    }
    if (aof === null) {
      warnings.push('Could not check whether Redis AOF is on: make sure appendonly is yes, as BullMQ needs.');
    } else if (!aof) {
      warnings.push(
        'Redis AOF is off (appendonly no): a Redis restart loses the jobs and progress written since its last ' +
          'snapshot. Set appendonly yes.',
      );
    }
  }
  return { maxmemoryPolicy, aof, source, warnings };
}

/** Logs one warning per problem with the Redis configuration (see `checkRedisConfig`); never throws. */
export async function warnAboutRedisConfig(
  redis: RedisClient,
  log: WarnLogger,
  timeoutMs = 2000,
): Promise<RedisConfigReport> {
  const report = await checkRedisConfig(redis, timeoutMs);
  for (const warning of report.warnings) {
    log.warn({ redisMaxmemoryPolicy: report.maxmemoryPolicy, redisAof: report.aof }, warning);
  }
  return report;
}
