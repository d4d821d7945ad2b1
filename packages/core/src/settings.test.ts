import { describe, expect, it } from 'vitest';
import { readSettings, setting, SettingsError } from './index.js';

describe('settings schema', () => {
  const schema = {
    port: setting.whole('PORT', 8000, { min: 0, max: 65535 }),
    keep: setting.whole('KEEP', 1, { min: 1 }),
    lock: setting.ms('LOCK_MS', 30_000),
    hours: setting.decimal('HOURS', 24),
    latency: setting.decimal('LATENCY_MS', 0, { zero: true }),
    on: setting.flag('ON', true),
    mode: setting.oneOf('MODE', ['a', 'b'], 'a'),
    name: setting.text('NAME', 'x', { pattern: /^[a-z]+$/, message: (v) => `NAME may hold a-z only, got "${v}"` }),
    origins: setting.list('ORIGINS', [], {
      item: (v) => v.replace(/\/+$/, ''),
      pattern: /^https:\/\//,
      message: (v) => `ORIGINS holds "${v}"`,
    }),
    url: setting.url('URL', undefined, ['https:'], (v, protocol) =>
      protocol ? `URL must be https, got ${protocol}` : `URL must be a URL, got "${v}"`,
    ),
  };

  it('gives the defaults for unset or blank variables', () => {
    const defaults = {
      port: 8000,
      keep: 1,
      lock: 30_000,
      hours: 24,
      latency: 0,
      on: true,
      mode: 'a',
      name: 'x',
      origins: [],
      url: undefined,
    };
    expect(readSettings(schema, {})).toEqual(defaults);
    expect(readSettings(schema, Object.fromEntries(Object.values(schema).map((s) => [s.name, '  '])))).toEqual(
      defaults,
    );
    expect(schema.port.given({ PORT: ' ' })).toBe(false);
    expect(schema.port.given({ PORT: '1' })).toBe(true);
  });

  it('reads trimmed values of each type', () => {
    const env = {
      PORT: ' 0 ',
      KEEP: '7',
      LOCK_MS: '100',
      HOURS: '0.5',
      LATENCY_MS: '0',
      ON: 'No',
      MODE: 'b',
      NAME: 'abc',
      ORIGINS: ' https://a/ ,, https://b ',
      URL: 'https://h/p',
    };
    expect(readSettings(schema, env)).toEqual({
      port: 0,
      keep: 7,
      lock: 100,
      hours: 0.5,
      latency: 0,
      on: false,
      mode: 'b',
      name: 'abc',
      origins: ['https://a', 'https://b'],
      url: 'https://h/p',
    });
  });

  it('refuses a bad value with the one message of its setting', () => {
    const cases: [Record<string, string>, string][] = [
      [{ PORT: '65536' }, 'PORT must be a whole number from 0 to 65535, got "65536"'],
      [{ KEEP: '1.5' }, 'KEEP must be a whole number ≥ 1, got "1.5"'],
      [{ LOCK_MS: '99' }, 'LOCK_MS must be a whole number of milliseconds ≥ 100, got "99"'],
      [{ HOURS: '0' }, 'HOURS must be a positive number, got "0"'],
      [{ LATENCY_MS: '-1' }, 'LATENCY_MS must be a number ≥ 0, got "-1"'],
      [{ ON: 'maybe' }, 'ON must be true or false, got "maybe"'],
      [{ MODE: 'c' }, 'MODE must be one of a, b, got "c"'],
      [{ NAME: 'A b' }, 'NAME may hold a-z only, got "A b"'],
      [{ ORIGINS: 'https://a,http://b' }, 'ORIGINS holds "http://b"'],
      [{ URL: 'nope' }, 'URL must be a URL, got "nope"'],
      [{ URL: 'http://h' }, 'URL must be https, got http:'],
    ];
    for (const [env, message] of cases) {
      expect(() => readSettings(schema, env)).toThrow(SettingsError);
      expect(() => readSettings(schema, env)).toThrow(message);
    }
  });
});
