/** `.env.example` lists every setting the apps read, with defaults that the apps accept as they are. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSharedSettings } from '@triage/queue';
import { readWorkerSettings } from '@triage/worker';
import { readApiSettings } from '../src/settings.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SETTINGS_SOURCES = ['packages/queue/src/settings.ts', 'apps/api/src/settings.ts', 'apps/worker/src/config.ts'];

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
      const read = new Set([...source.matchAll(/env\.([A-Z][A-Z0-9_]+)|\[?'([A-Z][A-Z0-9_]{2,})'/g)].map((m) => m[1] ?? m[2]!));
      for (const name of read) if (/_/.test(name) || ['HOST', 'PORT'].includes(name)) expect(listed, `${file} reads ${name}`).toContain(name);
    }
  });

  it('holds defaults every app accepts', async () => {
    const env = await example();
    expect(readSharedSettings(env).visionProvider).toBe('offline');
    expect(readWorkerSettings(env).shutdownDeadlineMs).toBe(10_000);
    expect(readApiSettings(env).port).toBe(8000);
  });
});
