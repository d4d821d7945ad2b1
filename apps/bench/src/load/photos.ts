/**
 * The load scenarios' photos: small generated ones, made once, linked into a user's storage folder as a
 * browser upload would have put them, and the job started on them through the API.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generateSampleSet, type SampleFile } from '@triage/images';
import type { Api } from './processes.js';
import { API_PREFIX, BUCKET, type LoadContext, type Service } from './service.js';

/** A set of small generated photos (kept in workDir/photos-WxH-N), made once. */
export async function samplePhotos(ctx: LoadContext, count: number, width = 480, height = 360): Promise<SampleFile[]> {
  const dir = join(ctx.workDir, `photos-${width}x${height}-${count}`);
  const manifest = join(dir, 'manifest.json');
  try {
    const files = JSON.parse(readFileSync(manifest, 'utf8')) as SampleFile[];
    if (files.length === count) return files;
  } catch {
    // not made yet
  }
  ctx.log(`photos: generating ${count} sample photos at ${width} × ${height} in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  const files = await generateSampleSet(dir, { count, width, height, seed: 11 });
  await writeFile(manifest, JSON.stringify(files));
  return files;
}

export interface StagedFile {
  original_name: string;
  storage_path: string;
  size: number;
}

/** Links photos into `triage/{user}/{job}/` of the storage folder, as a browser upload would have put them. */
export async function stagePhotos(
  svc: Service,
  userId: string,
  jobId: string,
  photos: readonly Pick<SampleFile, 'name' | 'path'>[],
  count: number,
): Promise<StagedFile[]> {
  const files: StagedFile[] = [];
  for (let i = 0; i < count; i++) {
    const photo = photos[i % photos.length]!;
    const path = `triage/${userId}/${jobId}/${String(i).padStart(4, '0')}-${photo.name}`;
    const target = svc.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(photo.path, target);
    files.push({ original_name: photo.name, storage_path: path, size: (await stat(photo.path)).size });
  }
  return files;
}

export async function startFromStorage(
  api: Api,
  token: string,
  jobId: string,
  files: StagedFile[],
  target = '10%',
): Promise<void> {
  const res = await fetch(`${api.base}${API_PREFIX}/start-from-storage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ job_id: jobId, files, target, criteria: 'standout', passes: 2 }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`start-from-storage answered ${res.status}: ${text.slice(0, 300)}`);
}
