/**
 * The legacy multipart `start`: each file part is streamed straight to storage (never held whole in memory),
 * after its leading bytes say it is a JPEG, PNG, HEIC/HEIF or WebP image. Parts that are not are skipped and
 * reported with the reason; a part larger than the limit fails the upload with 413.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { FastifyMultipartBaseOptions, MultipartFile } from '@fastify/multipart';
import { MAX_PHOTOS } from '@triage/core';
import type { PhotoInput } from '@triage/queue';
import { StorageRequestError } from '@triage/storage';
import { HttpError } from './errors.js';
import { acceptTriage, type Accepted, type JobDeps } from './jobs.js';

export interface SkippedPart {
  name: string;
  reason: string;
}

export type ImageKind = { ext: 'jpg' | 'png' | 'heic' | 'heif' | 'webp'; contentType: string };

const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs']);
const HEIF_BRANDS = new Set(['mif1', 'msf1', 'heif']);

/** The image type told by a file's first bytes, or null. */
export function sniffImage(head: Buffer): ImageKind | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff)
    return { ext: 'jpg', contentType: 'image/jpeg' };
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return { ext: 'png', contentType: 'image/png' };
  }
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') {
    return { ext: 'webp', contentType: 'image/webp' };
  }
  if (head.length >= 12 && head.toString('latin1', 4, 8) === 'ftyp') {
    const brand = head.toString('latin1', 8, 12);
    if (HEIC_BRANDS.has(brand)) return { ext: 'heic', contentType: 'image/heic' };
    if (HEIF_BRANDS.has(brand)) return { ext: 'heif', contentType: 'image/heif' };
  }
  return null;
}

const HEAD_BYTES = 12;
/** Sizes are checked here, so that the reply names the file that was too large. */
const PART_OPTIONS: FastifyMultipartBaseOptions = { throwFileSizeLimit: false };

async function drain(iterator: AsyncIterator<Buffer>): Promise<void> {
  while (!(await iterator.next()).done) {
    // discard
  }
}

function mb(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MB`;
}

/** Streams one file part to storage, or says why it was skipped. */
async function storePart(
  deps: JobDeps,
  part: MultipartFile,
  path: (ext: string) => string,
  name: string,
): Promise<{ photo: PhotoInput } | { skipped: SkippedPart }> {
  const iterator = part.file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let headLength = 0;
  while (headLength < HEAD_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    headLength += next.value.length;
  }
  const head = Buffer.concat(chunks);
  const kind = sniffImage(head);
  if (!kind) {
    await drain(iterator);
    if (part.file.truncated) throw tooLarge(deps, name);
    return { skipped: { name, reason: head.length === 0 ? 'empty file' : 'not a JPEG, PNG, HEIC/HEIF or WebP image' } };
  }
  let size = 0;
  async function* body(): AsyncGenerator<Buffer> {
    size += head.length;
    yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      size += next.value.length;
      yield next.value;
    }
  }
  const objectPath = path(kind.ext);
  try {
    await deps.storage.write(deps.settings.bucket, objectPath, Readable.from(body(), { objectMode: false }), {
      contentType: kind.contentType,
    });
  } catch (err) {
    // A refusal of this file (its type or size in this bucket) skips it, with the storage's reason.
    if (!(err instanceof StorageRequestError && err.kind === 'refused')) throw err;
    await drain(iterator);
    if (part.file.truncated) throw tooLarge(deps, name);
    return { skipped: { name, reason: `storage refused it: ${err.reason}` } };
  }
  if (part.file.truncated) {
    await deps.storage.remove(deps.settings.bucket, [objectPath]);
    throw tooLarge(deps, name);
  }
  return { photo: { name, path: objectPath, size } };
}

function tooLarge(deps: JobDeps, name: string): HttpError {
  return new HttpError(413, `File "${name}" is larger than the ${mb(deps.settings.maxUploadBytes)} upload limit`);
}

export async function acceptUpload(
  deps: JobDeps,
  request: FastifyRequest,
  userId: string,
): Promise<Accepted & { skipped: SkippedPart[] }> {
  if (!request.isMultipart()) throw new HttpError(400, 'Expected a multipart/form-data upload with "files" parts');
  const jobId = randomUUID();
  const folder = `triage/${userId}/${jobId}`;
  const photos: PhotoInput[] = [];
  const skipped: SkippedPart[] = [];
  const fields: Record<string, string> = {};
  let files = 0;
  try {
    for await (const part of request.parts(PART_OPTIONS)) {
      if (part.type === 'field') {
        if (['target', 'criteria', 'passes'].includes(part.fieldname)) fields[part.fieldname] = String(part.value);
        continue;
      }
      files++;
      const name = (part.filename || `file-${files}`).slice(0, 1024);
      if (part.fieldname !== 'files' && part.fieldname !== 'file') {
        await drain(part.file[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
        skipped.push({ name, reason: `unexpected field "${part.fieldname}" (send photos as "files")` });
        continue;
      }
      if (photos.length >= MAX_PHOTOS) throw new HttpError(400, `Maximum ${MAX_PHOTOS} photos allowed per triage`);
      const outcome = await storePart(deps, part, (ext) => `${folder}/${randomUUID()}.${ext}`, name);
      if ('photo' in outcome) photos.push(outcome.photo);
      else skipped.push(outcome.skipped);
    }
    if (photos.length === 0) throw new HttpError(400, 'No files provided', { skipped });
    const accepted = await acceptTriage(deps, userId, {
      jobId,
      photos,
      target: fields.target,
      criteria: fields.criteria,
      passes: fields.passes,
      stored: true,
    });
    return { ...accepted, skipped };
  } catch (err) {
    // Nothing half-accepted: the files of a refused upload do not stay in storage.
    await deps.storage
      .remove(
        deps.settings.bucket,
        photos.map((p) => p.path),
      )
      .catch(() => {});
    if (err instanceof HttpError && err.statusCode === 400 && skipped.length > 0 && !('skipped' in err.extra)) {
      throw new HttpError(400, err.message, { ...err.extra, skipped });
    }
    throw err;
  }
}
