/**
 * Settings from the environment, each declared once: its variable, its type, its default and the message for a
 * bad value. An app's settings are a schema (an object of such declarations, shared ones and its own), read in
 * one go by `readSettings`. An unset or blank variable means the default; values are trimmed.
 */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

export type Env = Record<string, string | undefined>;

export interface Setting<T> {
  /** The environment variable. */
  readonly name: string;
  /** The value when the variable is unset or blank. */
  readonly default: T;
  /** The value `env` gives, or the default; throws SettingsError naming the variable for a bad value. */
  read(env: Env): T;
  /** Whether `env` sets the variable (to something other than blanks). */
  given(env: Env): boolean;
}

/** A setting of any other type: `parse` gets the trimmed value and the value as given (for messages). */
export function custom<T>(name: string, fallback: T, parse: (value: string, given: string) => T): Setting<T> {
  return {
    name,
    default: fallback,
    read(env) {
      const given = env[name];
      const value = given?.trim();
      return value ? parse(value, given!) : fallback;
    },
    given: (env) => Boolean(env[name]?.trim()),
  };
}

function bad(message: string): never {
  throw new SettingsError(message);
}

export interface WholeBounds {
  min: number;
  /** No upper bound when left out. */
  max?: number;
}

function wholeIn(name: string, fallback: number | undefined, { min, max }: WholeBounds, kind: string) {
  const range = max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
  return custom(name, fallback, (value, given) => {
    const n = Number(value);
    return Number.isInteger(n) && n >= min && (max === undefined || n <= max)
      ? n
      : bad(`${name} must be ${kind} ${range}, got "${given}"`);
  });
}

/** A whole number within bounds. */
export function whole<T extends number | undefined>(
  name: string,
  fallback: T,
  bounds: WholeBounds,
): Setting<number | T> {
  return wholeIn(name, fallback, bounds, 'a whole number') as Setting<number | T>;
}

/** A duration: a whole number of milliseconds, at least 100 unless told. */
export function ms(name: string, fallback: number, bounds: WholeBounds = { min: 100 }): Setting<number> {
  return wholeIn(name, fallback, bounds, 'a whole number of milliseconds') as Setting<number>;
}

/** A number, fractions allowed: positive, or ≥ 0 with `{ zero: true }`. */
export function decimal<T extends number | undefined>(
  name: string,
  fallback: T,
  { zero = false } = {},
): Setting<number | T> {
  return custom<number | T>(name, fallback, (value, given) => {
    const n = Number(value);
    if (Number.isFinite(n) && (zero ? n >= 0 : n > 0)) return n;
    return bad(`${name} must be ${zero ? 'a number ≥ 0' : 'a positive number'}, got "${given}"`);
  });
}

/** true/false, also spelled 1/0, yes/no, on/off. */
export function flag(name: string, fallback: boolean): Setting<boolean> {
  return custom(name, fallback, (value, given) => {
    const v = value.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return bad(`${name} must be true or false, got "${given}"`);
  });
}

/** One of a few words. */
export function oneOf<const A extends readonly string[], T extends A[number] | undefined>(
  name: string,
  allowed: A,
  fallback: T,
): Setting<A[number] | T> {
  return custom<A[number] | T>(name, fallback, (value) =>
    allowed.includes(value) ? value : bad(`${name} must be one of ${allowed.join(', ')}, got "${value}"`),
  );
}

/** Free text, or text matching `pattern` (else `message(value)`). */
export function text<T extends string | undefined>(
  name: string,
  fallback: T,
  check?: { pattern: RegExp; message: (value: string) => string },
): Setting<string | T> {
  return custom<string | T>(name, fallback, (value) =>
    !check || check.pattern.test(value) ? value : bad(check.message(value)),
  );
}

/** A comma-separated list; each item trimmed by `item` (if given), blanks dropped, then checked. */
export function list(
  name: string,
  fallback: string[],
  check?: { item?: (value: string) => string; pattern: RegExp; message: (item: string) => string },
): Setting<string[]> {
  return custom(name, fallback, (value) =>
    value
      .split(',')
      .map((v) => check?.item?.(v.trim()) ?? v.trim())
      .filter(Boolean)
      .map((v) => (!check || check.pattern.test(v) ? v : bad(check.message(v)))),
  );
}

/**
 * An absolute URL with one of `protocols` (e.g. `['https:']`). `message` gets the value, and the protocol
 * when the value is a URL of another kind.
 */
export function url<T extends string | undefined>(
  name: string,
  fallback: T,
  protocols: readonly string[],
  message: (value: string, protocol?: string) => string,
): Setting<string | T> {
  return custom<string | T>(name, fallback, (value) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return bad(message(value));
    }
    return protocols.includes(parsed.protocol) ? value : bad(message(value, parsed.protocol));
  });
}

export type Schema = Record<string, Setting<unknown>>;
export type SettingsOf<S extends Schema> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** Every setting of `schema`, in the order declared; the first bad value throws. */
export function readSettings<S extends Schema>(schema: S, env: Env): SettingsOf<S> {
  return Object.fromEntries(Object.entries(schema).map(([key, s]) => [key, s.read(env)])) as SettingsOf<S>;
}
