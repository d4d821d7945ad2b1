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
