/**
 * Synthetic photos for the tests: deterministic scenes with shapes, gradients and fine texture, written
 * with sharp into a temp directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharp } from '../sharp.js';
import { mulberry32 as prng } from '../random.js';

export { prng };

export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
}

/**
 * A "photo": a diagonal gradient, a few dozen solid rectangles and discs, and patches of fine texture
 * (1–3 px checks and stripes) so that focus blur visibly changes it. Different seeds give different scenes.
 */
export function scene(seed: number, width = 1600, height = 1200): RawImage {
  const rand = prng(seed);
  const data = Buffer.alloc(width * height * 3);
  const base = [rand() * 255, rand() * 255, rand() * 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) data[o + c] = Math.round(base[c]! * (1 - t) + (255 - base[c]!) * t * 0.8);
    }
  }
  for (let k = 0; k < 40; k++) {
    const w = Math.floor(40 + rand() * 360);
    const h = Math.floor(40 + rand() * 300);
    const x0 = Math.floor(rand() * (width - w));
    const y0 = Math.floor(rand() * (height - h));
    const colour = [rand() * 255, rand() * 255, rand() * 255].map(Math.round);
    const disc = rand() < 0.5;
    const texture = rand() < 0.5 ? Math.floor(1 + rand() * 3) : 0;
    for (let y = y0; y < y0 + h; y++) {
      for (let x = x0; x < x0 + w; x++) {
        if (disc) {
          const dx = (x - x0 - w / 2) / (w / 2);
          const dy = (y - y0 - h / 2) / (h / 2);
          if (dx * dx + dy * dy > 1) continue;
        }
        const on = texture === 0 || (Math.floor(x / texture) + Math.floor(y / texture)) % 2 === 0;
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) data[o + c] = on ? colour[c]! : 255 - colour[c]!;
      }
    }
  }
  return { data, width, height };
}

/** Every channel value multiplied by `factor` (clamped): < 1 underexposes, > 1 blows highlights out. */
export function scaled(image: RawImage, factor: number): RawImage {
  const data = Buffer.alloc(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.round(image.data[i]! * factor));
  return { ...image, data };
}

/** The image with small uniform noise (±amplitude) added: a near-identical frame of the same scene. */
export function noisy(image: RawImage, amplitude: number, seed: number): RawImage {
  const rand = prng(seed);
  const data = Buffer.alloc(image.data.length);
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.max(0, Math.min(255, Math.round(image.data[i]! + (rand() * 2 - 1) * amplitude)));
  }
  return { ...image, data };
}

export async function writeJpeg(
  path: string,
  image: RawImage,
  options: { blur?: number; quality?: number } = {},
): Promise<string> {
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (options.blur) pipeline = pipeline.blur(options.blur);
  await pipeline.jpeg({ quality: options.quality ?? 90 }).toFile(path);
  return path;
}

/** A fresh temp directory and its removal. */
export async function tempDir(): Promise<{
  dir: string;
  file: (name: string) => string;
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'triage-images-'));
  return { dir, file: (name) => join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
