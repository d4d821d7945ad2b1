/**
 * The picks as a ZIP, streamed: yazl opens each original only when its entry is written, so memory holds
 * one entry's buffers at most, whatever the archive's size. Entries are stored, not deflated (photos are
 * compressed already). Clashing names become `name (2).jpg`.
 */
import type { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import type { SelectedPhoto } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';

/** A file name safe in any archive tool: no folders, no control characters, never empty. */
export function safeName(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex -- removing control characters from a name is the point
  const base = (name.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return base === '' || base === '.' || base === '..' ? fallback : base.slice(0, 200);
}

/** Makes names unique, case-insensitively (archives are unpacked on case-insensitive disks too). */
export function uniqueNames(names: readonly string[]): string[] {
  const taken = new Set<string>();
  return names.map((name) => {
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    let candidate = name;
    for (let n = 2; taken.has(candidate.toLowerCase()); n++) candidate = `${stem} (${n})${ext}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}

export async function zipSelection(
  storage: StorageDriver,
  bucket: string,
  photos: readonly SelectedPhoto[],
): Promise<Readable> {
  // Check first, so that a missing original becomes a note in the archive instead of a broken download.
  const found = await storage.statMany(
    bucket,
    photos.map((p) => p.path),
  );
  const present = photos.filter((_, i) => found[i] !== null);
  const missing = photos.filter((_, i) => found[i] === null);
  const names = uniqueNames(present.map((p) => safeName(p.name, `photo-${p.index + 1}.jpg`)));
  const zip = new ZipFile();
  present.forEach((photo, i) => {
    zip.addReadStreamLazy(names[i]!, { compress: false }, (cb) => {
      storage.readStream(bucket, photo.path).then(
        (stream) => cb(null, stream),
        (err: unknown) => cb(err, undefined as unknown as NodeJS.ReadableStream),
      );
    });
  });
  if (missing.length > 0) {
    const text = `These selected photos were no longer in storage:\n${missing.map((p) => p.name).join('\n')}\n`;
    zip.addBuffer(Buffer.from(text), uniqueNames([...names, 'MISSING.txt']).at(-1)!);
  }
  const output = zip.outputStream as Readable;
  zip.on('error', (err: Error) => output.destroy(err));
  zip.end();
  return output;
}
