/** Small helpers every benchmark of this app uses: waiting, megabytes, the date stamp of a section. */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(0);
}

/** A date as sections show it: `YYYY-MM-DD HH:MM UTC`. */
export function utcStamp(date = new Date()): string {
  return date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** A whole-number option, or the fallback when it is not given; anything else stops the run with exit code 2. */
export function wholeArg(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  bound = ` ≥ ${min}`,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be a whole number${bound}, got "${raw}"`);
    process.exit(2);
  }
  return n;
}
