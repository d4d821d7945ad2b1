/**
 * The embedded storage driver: bucket B, path P live at `$STORAGE_DIR/B/P`. It needs no account and no
 * network, and it is what `triage run` and a single-machine deployment use.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import {
  checkBucket,
  checkByteRange,
  checkObjectPath,
  InvalidPathError,
  ObjectNotFoundError,
  type LocalFile,
  type ObjectInfo,
  type ReadOptions,
  type SignedUrlOptions,
  type StorageDriver,
} from './driver.js';
import { mapBounded } from './bounded.js';

export interface LocalStorageOptions {
  /** The folder holding one sub-folder per bucket. */
  root: string;
  /** Extra latency per read, ms: lets a benchmark imitate a remote store. */
  readLatencyMs?: number;
  /**
   * Base URL under which an HTTP server serves this folder (e.g. the API's `/storage`). Signed URLs are then
   * `{publicUrl}/{bucket}/{path}?expires=…&signature=…`; without it they are `file:` URLs.
   */
  publicUrl?: string;
  /** Key for signing URLs (required with publicUrl). */
  signingKey?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
  gif: 'image/gif',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  avif: 'image/avif',
};

export function contentTypeOf(path: string): string {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

export class LocalStorage implements StorageDriver {
  readonly name = 'local';
  readonly root: string;

  constructor(private readonly options: LocalStorageOptions) {
    this.root = resolve(options.root);
    if (options.publicUrl && !options.signingKey)
      throw new Error('a signing key is required to sign local storage URLs');
  }

  /** The file behind an object; refuses anything that would land outside the bucket's folder. */
  filePath(bucket: string, path: string): string {
    const bucketDir = join(this.root, checkBucket(bucket));
    const full = resolve(bucketDir, checkObjectPath(path));
    if (!full.startsWith(bucketDir + sep)) throw new InvalidPathError(`path escapes its bucket: ${path}`);
    return full;
  }

  async stat(bucket: string, path: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.filePath(bucket, path));
      if (!s.isFile()) return null;
      return { size: s.size, contentType: contentTypeOf(path), modifiedAt: s.mtime };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async statMany(bucket: string, paths: readonly string[], options: ReadOptions = {}): Promise<(ObjectInfo | null)[]> {
    return mapBounded(paths, 16, (path) => this.stat(bucket, path), options.signal);
  }

  async readToFile(bucket: string, path: string, options: ReadOptions = {}): Promise<LocalFile> {
    const file = this.filePath(bucket, path);
    await this.latency(options.signal);
    const info = await this.stat(bucket, path);
    if (!info) throw new ObjectNotFoundError(bucket, path);
    // Already a file on disk: hand it over as it is, nothing to copy and nothing to delete afterwards.
    return { path: file, size: info.size, release: async () => {} };
  }

  async readStream(bucket: string, path: string, options: ReadOptions = {}): Promise<Readable> {
    await this.latency(options.signal);
    const handle = await this.openOrThrow(bucket, path);
    return handle.createReadStream({ signal: options.signal });
  }

  async readRange(
    bucket: string,
    path: string,
    start: number,
    end: number,
    options: ReadOptions = {},
  ): Promise<Buffer> {
    checkByteRange(start, end);
    await this.latency(options.signal);
    const handle = await this.openOrThrow(bucket, path);
    try {
      const buffer = Buffer.alloc(end - start);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async write(bucket: string, path: string, body: Buffer | Readable, _options: { contentType: string }): Promise<void> {
    const file = this.filePath(bucket, path);
    await mkdir(dirname(file), { recursive: true });
    // Write beside, then rename: a reader never sees half a file.
    const partial = `${file}.partial-${randomUUID()}`;
    try {
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(partial));
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }

  async signedUrl(bucket: string, path: string, expiresIn: number, _options: SignedUrlOptions = {}): Promise<string> {
    const file = this.filePath(bucket, path);
    const { publicUrl, signingKey } = this.options;
    if (!publicUrl || !signingKey) return pathToFileURL(file).toString();
    const expires = Math.floor(Date.now() / 1000) + expiresIn;
    const signature = signLocal(signingKey, bucket, path, expires);
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    return `${publicUrl.replace(/\/$/, '')}/${encodeURIComponent(bucket)}/${encoded}?expires=${expires}&signature=${signature}`;
  }

  /** Checks a URL made by signedUrl: true while it has not expired and its signature matches. */
  verifySignedUrl(bucket: string, path: string, expires: number, signature: string): boolean {
    const { signingKey } = this.options;
    if (!signingKey || !(expires * 1000 > Date.now())) return false;
    const expected = Buffer.from(signLocal(signingKey, bucket, path, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  async copy(bucket: string, from: string, to: string): Promise<void> {
    const source = this.filePath(bucket, from);
    const target = this.filePath(bucket, to);
    await mkdir(dirname(target), { recursive: true });
    // Copied beside (a clone where the file system can), then linked into place: a reader never sees half a
    // file, and an existing destination is kept.
    const partial = `${target}.partial-${randomUUID()}`;
    try {
      await copyFile(source, partial, fsConstants.COPYFILE_FICLONE);
      await link(partial, target).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(bucket, from);
      throw err;
    } finally {
      await rm(partial, { force: true });
    }
  }

  async remove(bucket: string, paths: readonly string[]): Promise<void> {
    for (const path of paths) {
      try {
        await unlink(this.filePath(bucket, path));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
  }

  /** Opens an object for reading; a folder (a prefix of other objects) is no object either. */
  private async openOrThrow(bucket: string, path: string) {
    let handle;
    try {
      handle = await open(this.filePath(bucket, path), 'r');
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(bucket, path);
      throw err;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new ObjectNotFoundError(bucket, path);
    }
    return handle;
  }

  private async latency(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const ms = this.options.readLatencyMs ?? 0;
    if (ms > 0) await sleep(ms, undefined, { signal });
  }
}

function signLocal(key: string, bucket: string, path: string, expires: number): string {
  return createHmac('sha256', key).update(`${bucket}\n${path}\n${expires}`).digest('base64url');
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  // EISDIR: a folder, which is a prefix of objects, not an object.
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
