/**
 * The store's Lua scripts: one file each in `lua/` beside this module, with a header naming its KEYS and
 * ARGV (the package's build copies them from src/lua to dist/lua, as tsc does not). Each file is read once,
 * when this module is first imported, and registered on a client as an ioredis command: ioredis sends the
 * script's text once per connection (per node, in a Cluster), EVALSHA after that, and the text again when
 * Redis answers NOSCRIPT (a restarted or newly promoted node, a SCRIPT FLUSH).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './redis.js';

/** Every script, by its file's name (`lua/<name>.lua`). */
export const SCRIPTS = [
  'create',
  'record-grid',
  'handoff',
  'start',
  'begin-fine',
  'finish',
  'note-pause',
  'fair-turn',
] as const;
export type ScriptName = (typeof SCRIPTS)[number];

const DIR = new URL('./lua/', import.meta.url);

function readScript(file: string): string {
  const url = new URL(file, DIR);
  try {
    return readFileSync(url, 'utf8');
  } catch (err) {
    throw new Error(
      `The Lua script ${fileURLToPath(url)} cannot be read (${(err as Error).message}): ` +
        'the build of @triage/queue copies src/lua to dist/lua; run `npm run build`',
    );
  }
}

/** `prelude.lua` (helpers every script may call), then the script. */
const PRELUDE = readScript('prelude.lua');
const SOURCES = new Map<ScriptName, string>(SCRIPTS.map((name) => [name, `${PRELUDE}\n${readScript(`${name}.lua`)}`]));

/** The ioredis command a script is registered as (a name no Redis command has). */
function commandName(name: ScriptName): string {
  return `triage_${name.replaceAll('-', '_')}`;
}

const defined = new WeakSet<RedisClient>();

/** Registers every script on `redis` (once per client; later calls do nothing). */
export function defineScripts(redis: RedisClient): void {
  if (defined.has(redis)) return;
  for (const [name, lua] of SOURCES) redis.defineCommand(commandName(name), { lua });
  defined.add(redis);
}

type ScriptCommand = (numberOfKeys: number, ...keysThenArgs: string[]) => Promise<unknown>;

/** Runs a script on `redis`, registering the scripts first if they are not yet. */
export async function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  defineScripts(redis);
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(name)]!;
  return command.call(redis, keys.length, ...keys, ...args);
}
