/**
 * The storage interface every driver implements. Objects are addressed by bucket and path, as in Supabase
 * Storage; the local driver maps them onto a folder.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  size: number;
  contentType?: string;
  modifiedAt?: Date;
}

/** A readable file on local disk holding an object's bytes; `release` deletes it when it was a copy. */
export interface LocalFile {
  path: string;
  size: number;
  release(): Promise<void>;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface SignedUrlOptions {
  /** Ask for a resized image where the storage can make one. */
  transform?: { width: number; height: number; resize?: 'cover' | 'contain' | 'fill' };
}

export interface StorageDriver {
  readonly name: string;
  /** Size and type of an object, or null when there is none. */
  stat(bucket: string, path: string): Promise<ObjectInfo | null>;
  /** The object as a file sharp can read by path (never a whole Buffer in memory). */
  readToFile(bucket: string, path: string, options?: ReadOptions): Promise<LocalFile>;
  /** A stream of the object's bytes, for callers that pass them on (a ZIP, an HTTP reply). */
  readStream(bucket: string, path: string, options?: ReadOptions): Promise<Readable>;
  /** Bytes [start, end) of an object: a file's head without reading the rest. */
  readRange(bucket: string, path: string, start: number, end: number, options?: ReadOptions): Promise<Buffer>;
  write(bucket: string, path: string, body: Buffer | Readable, options: { contentType: string }): Promise<void>;
  /** A URL that gives the object (or a resized copy) to whoever holds it, for `expiresIn` seconds. */
  signedUrl(bucket: string, path: string, expiresIn: number, options?: SignedUrlOptions): Promise<string>;
  /**
   * Copies an object inside the bucket on the storage side (its bytes never pass through this process). A
   * destination that already exists is left as it is: copies go to paths that name their source, so a repeated
   * copy (a redelivered job) is no error. A missing source is an ObjectNotFoundError.
   */
  copy(bucket: string, from: string, to: string): Promise<void>;
  /**
   * Removes objects; missing ones are not an error. An object the storage leaves in place while answering
   * success (a key that may not delete) is: the call throws rather than report a removal that did not happen.
   */
  remove(bucket: string, paths: readonly string[]): Promise<void>;
  /**
   * Checks that the storage is usable as configured: the bucket exists and this process may read, write and
   * delete in it. Throws a StorageRequestError naming the setting to fix. Optional.
   */
  check?(bucket: string): Promise<void>;
  /** Throws InvalidPathError when the storage cannot hold an object under this name (e.g. non-ASCII). Optional. */
  checkKey?(path: string): void;
  /** Whether the storage answers at all (not down, not 5xx): tells an outage from one unreadable object. Optional. */
  reachable?(bucket: string, options?: ReadOptions): Promise<boolean>;
  /**
   * Whether storage-side transforms work now in this process (see readTransformed); a refused or failing
   * transform feature turns them off for a while. `samplePath` is an object a probe may render. Optional.
   */
  transformsUsable?(bucket: string, samplePath: string): Promise<boolean>;
  /**
   * Size and type of many objects at once (null where there is none), in the order given. Optional: callers
   * fall back to `stat` one by one.
   */
  statMany(bucket: string, paths: readonly string[], options?: ReadOptions): Promise<(ObjectInfo | null)[]>;
  /** Signed URLs for many objects at once (null where there is none), in the order given. Optional. */
  signedUrls?(bucket: string, paths: readonly string[], expiresIn: number): Promise<(string | null)[]>;
  /**
   * The object resized by the storage service itself, as a local file (phase 4). Optional: only drivers
   * whose storage can transform images have it. Throws TransformRefusedError when the service will not make
   * this copy (source too large, unreadable format, any error): the caller then reads the original.
   */
  readTransformed?(bucket: string, path: string, transform: ImageTransform, options?: ReadOptions): Promise<LocalFile>;
}

/** A resize the storage service performs: width and height in px, clamped to what the service accepts. */
export interface ImageTransform {
  width: number;
  height: number;
  resize?: 'cover' | 'contain' | 'fill';
  /** 20–100; the service's default when absent. */
  quality?: number;
}

/** The storage service would not make a transformed copy: read the original instead. */
export class TransformRefusedError extends Error {
  override name = 'TransformRefusedError';
  constructor(
    readonly bucket: string,
    readonly path: string,
    /** Why, in words (the service's message where it gave one). */
    readonly reason: string,
    /** HTTP status of the refusal, when there was one. */
    readonly status?: number,
  ) {
    super(`transform refused for ${bucket}/${path}: ${reason}`);
  }
}

/**
 * What a failed storage request means for the caller:
 *   - unavailable: the storage did not answer, or answered 5xx, through every retry (an outage: wait);
 *   - config: the storage refuses this deployment's settings (`setting` names which: a wrong URL, key or bucket);
 *   - refused: the storage will not take this object (its type, size or name), a permanent answer about it;
 *   - failed: anything else.
 */
export type StorageErrorKind = 'unavailable' | 'config' | 'refused' | 'failed';

/** A request to storage failed for good; `reason` is short and meant for the user and the logs. */
export class StorageRequestError extends Error {
  override name = 'StorageRequestError';
  constructor(
    readonly reason: string,
    readonly details: {
      status?: number;
      code?: string;
      attempts: number;
      retryable: boolean;
      kind?: StorageErrorKind;
      setting?: string;
    },
  ) {
    super(reason);
  }

  get kind(): StorageErrorKind {
    return this.details.kind ?? (this.details.retryable ? 'unavailable' : 'failed');
  }
}

/** Storage was unavailable (or refused the configuration) while photos were read: the work is to be retried later. */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
  constructor(
    readonly reason: string,
    override readonly cause?: unknown,
  ) {
    super(reason);
  }
}

/** The object does not exist: a permanent failure for that photo. */
export class ObjectNotFoundError extends Error {
  override name = 'ObjectNotFoundError';
  constructor(
    readonly bucket: string,
    readonly path: string,
  ) {
    super(`object not found: ${bucket}/${path}`);
  }
}

/** A bucket or path that is malformed or tries to leave its bucket. */
export class InvalidPathError extends Error {
  override name = 'InvalidPathError';
}

/**
 * Checks an object path: relative, no `..` or `.` segments, no empty segments, no backslashes or control
 * characters, no percent-encoded escapes (double-encoded ones included). Returns the path unchanged when it is safe.
 */
export function checkObjectPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 1024) {
    throw new InvalidPathError('object path must be 1–1024 characters');
  }
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path))
    throw new InvalidPathError(`absolute paths are not allowed: ${path}`);
  // eslint-disable-next-line no-control-regex -- refusing control characters in a path is the point
  if (/[\\\u0000-\u001f\u007f]/.test(path))
    throw new InvalidPathError(`invalid characters in path: ${JSON.stringify(path)}`);
  // %25 too: a double-encoded escape (%252e%252e) becomes one wherever a path is decoded twice.
  if (/%2e|%2f|%5c|%00|%25/i.test(path)) throw new InvalidPathError(`encoded separators are not allowed: ${path}`);
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new InvalidPathError(`path segments may not be empty, "." or "..": ${path}`);
    }
  }
  return path;
}

/** Checks a `readRange` range [start, end): whole numbers, not negative, not reversed (empty is fine). */
export function checkByteRange(start: number, end: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end >= start)) {
    throw new RangeError(`invalid byte range [${start}, ${end})`);
  }
}

export function checkBucket(bucket: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(bucket)) throw new InvalidPathError(`invalid bucket name: ${bucket}`);
  return bucket;
}
