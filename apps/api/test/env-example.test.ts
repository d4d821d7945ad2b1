/** `.env.example` lists every setting the apps read, with defaults that the apps accept as they are. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Setting } from '@triage/core';
import {
  API_NODE_ARGS,
  GRID_SETTINGS,
  LOG_LEVEL,
  readSharedSettings,
  REDIS_SETTINGS,
  SHARED_SETTINGS,
  WORKER_MALLOC_ENV,
  WORKER_NODE_ARGS,
} from '@triage/queue';
import { readWorkerSettings, WORKER_SETTINGS } from '@triage/worker';
import { DATABASE_SETTINGS, readDatabaseSettings } from '@triage/db';
import { API_SETTINGS, readApiSettings } from '../src/settings.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SETTINGS_SOURCES = [
  'packages/queue/src/settings.ts',
  'packages/queue/src/redis-settings.ts',
  'packages/db/src/settings.ts',
  'apps/api/src/settings.ts',
  'apps/worker/src/config.ts',
  'apps/cli/src/redis-server.ts',
];

async function example(): Promise<Record<string, string>> {
  const text = await readFile(resolve(root, '.env.example'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

describe('.env.example', () => {
  it('names every variable the settings read', async () => {
    const listed = Object.keys(await example());
    for (const file of SETTINGS_SOURCES) {
      const source = await readFile(resolve(root, file), 'utf8');
      const read = new Set(
        [...source.matchAll(/env\.([A-Z][A-Z0-9_]+)|\[?'([A-Z][A-Z0-9_]{2,})'/g)].map((m) => m[1] ?? m[2]!),
      );
      for (const name of read)
        if (/_/.test(name) || ['HOST', 'PORT'].includes(name)) expect(listed, `${file} reads ${name}`).toContain(name);
    }
  });

  it('names every variable the settings schemas declare, with the declared default or blank (= the default)', async () => {
    const env = await example();
    const schemas: Record<string, Setting<unknown>>[] = [
      SHARED_SETTINGS,
      GRID_SETTINGS.coarse,
      GRID_SETTINGS.fine,
      REDIS_SETTINGS,
      DATABASE_SETTINGS,
      API_SETTINGS,
      WORKER_SETTINGS,
      { LOG_LEVEL },
    ];
    const declared = schemas.flatMap((schema) => Object.values(schema));
    expect(declared.map((s) => s.name)).toContain('GRID_FINE_ROWS');
    for (const s of declared) {
      expect(Object.keys(env)).toContain(s.name);
      if (env[s.name] !== '')
        expect(env[s.name], s.name).toBe(Array.isArray(s.default) ? s.default.join(',') : String(s.default));
    }
  });

  it('holds defaults every app accepts', async () => {
    const env = await example();
    expect(readSharedSettings(env).visionProvider).toBe('offline');
    expect(readWorkerSettings(env).shutdownDeadlineMs).toBe(10_000);
    expect(readApiSettings(env).port).toBe(8000);
    // No DATABASE_URL by default: the embedded deployment has no database; every other value is accepted as it is.
    expect(readDatabaseSettings(env)).toBeNull();
    expect(readDatabaseSettings({ ...env, DATABASE_URL: 'postgres://u:p@db:5432/x' })).toMatchObject({
      poolMax: 10,
      statementTimeoutMs: 15_000,
      holdTimeoutMs: 60_000,
      migrateOnStart: false,
    });
  });
});

describe('the images (Dockerfile)', () => {
  /** The JSON-form CMD of a build stage, as an argument list. */
  async function stageCmd(stage: string): Promise<string[]> {
    const text = await readFile(resolve(root, 'Dockerfile'), 'utf8');
    const body = text
      .split(/^FROM /m)
      .find((part) => new RegExp(`^\\S+ AS ${stage}\\s*$`, 'm').test(part.split('\n')[0]!));
    expect(body, `stage ${stage}`).toBeDefined();
    const cmd = /^CMD (\[.*\])\s*$/m.exec(body!);
    expect(cmd, `CMD of ${stage}`).not.toBeNull();
    return JSON.parse(cmd![1]!) as string[];
  }

  it('start the worker and the API with the Node flags every other start uses (packages/queue/src/runtime.ts)', async () => {
    expect(await stageCmd('worker')).toEqual(['node', ...WORKER_NODE_ARGS, 'apps/worker/dist/main.js']);
    expect(await stageCmd('api')).toEqual(['node', ...API_NODE_ARGS, 'apps/api/dist/server.js']);
  });

  it('start the worker as the manual starts in README.md and docs/deploy.md do', async () => {
    for (const doc of ['README.md', 'docs/deploy.md']) {
      const text = (await readFile(resolve(root, doc), 'utf8')).replace(/\s*\\\n\s*|`?\n`?/g, ' ');
      const starts = [
        ...text.matchAll(/(?:MALLOC_\w+=\d+ )+(?:NODE_ENV=production )?node [^`]*?apps\/worker\/dist\/main\.js/g),
      ].map((m) => m[0]);
      expect(starts.length, doc).toBeGreaterThan(0);
      for (const start of starts) {
        expect(start, doc).toContain(`node ${WORKER_NODE_ARGS.join(' ')} apps/worker/dist/main.js`);
        for (const [name, value] of Object.entries(WORKER_MALLOC_ENV)) expect(start, doc).toContain(`${name}=${value}`);
      }
    }
  });

  it('give the worker its malloc settings', async () => {
    const text = (await readFile(resolve(root, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
    for (const [name, value] of Object.entries(WORKER_MALLOC_ENV))
      expect(text, name).toMatch(new RegExp(`\\b${name}=${value}\\b`));
  });
});
