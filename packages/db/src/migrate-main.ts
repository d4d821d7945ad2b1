#!/usr/bin/env node
/** `npm run migrate`: applies the SQL migrations to DATABASE_URL and says which. */
import { redactUrl } from '@triage/core';
import { createPool, migrate, readDatabaseSettings } from './index.js';

async function main(): Promise<number> {
  const settings = readDatabaseSettings();
  if (!settings) {
    console.error('migrate: DATABASE_URL is not set; nothing to migrate (the service runs without a database then).');
    return 2;
  }
  const pool = createPool(settings, 'photo-triage-migrate');
  try {
    const applied = await migrate(pool);
    const where = redactUrl(settings.url);
    console.log(
      applied.length > 0 ? `migrate: applied ${applied.join(', ')} to ${where}` : `migrate: ${where} is up to date`,
    );
    return 0;
  } finally {
    await pool.end();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`migrate: ${(err as Error).message}`);
    process.exit(1);
  },
);
