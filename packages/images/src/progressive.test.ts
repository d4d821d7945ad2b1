import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProgressiveDc, locateDcScans, type DcImage } from './progressive.js';
import { sharp } from './sharp.js';
import { scene, tempDir, type RawImage } from './testing/fixtures.js';
import { mulberry32 } from './random.js';
import { thumbnailFromDcScans, thumbnailFromFile } from './thumbnail.js';

/**
 * The fixtures are one 203 × 149 JPEG (q85, 4:2:0) rewritten losslessly by jpegtran, so all carry the same
 * DCT coefficients:
 *   progressive.jpg                 jpegtran -progressive            (libjpeg's script: one DC scan, Al = 1)
 *   progressive-restart-row.jpg     jpegtran -progressive -restart 1 (a restart marker every MCU row)
 *   dc-separate-restart3.jpg        jpegtran -scans (one DC scan per component, Al = 0) -restart 3B
 *   progressive-grey-restart7.jpg   jpegtran -progressive -grayscale -restart 7B
 */
const fixture = (name: string) => readFile(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)));

function decoded(bytes: Uint8Array): DcImage {
  const result = decodeProgressiveDc(bytes, true);
  if (result.kind !== 'image') throw new Error(`expected an image, got ${JSON.stringify(result)}`);
  return result.image;
}

/**
 * How far a DC image is from the 8 × 8 block means of sharp's full decode of the same file (what the DC
 * coefficient is, up to its quantisation): the mean absolute difference over all channels, and the 99th
 * percentile of the luma's. With 4:2:0 a chroma DC covers 16 × 16 px (libjpeg's own 1/8 scale reads two AC
 * terms more for chroma), so a block on a sharp colour edge can be far from its own colour mean; the luma
 * carries the detail and must be close everywhere.
 */
async function distanceToBlockMeans(bytes: Buffer, image: DcImage): Promise<{ mean: number; lumaP99: number }> {
  const full = await sharp(bytes)
    .toColourspace(image.channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = full.info;
  expect(channels).toBe(image.channels);
  expect([Math.ceil(width / 8), Math.ceil(height / 8)]).toEqual([image.width, image.height]);
  const luma = (p: ArrayLike<number>, o: number) =>
    channels === 1 ? p[o]! : 0.299 * p[o]! + 0.587 * p[o + 1]! + 0.114 * p[o + 2]!;
  let sum = 0;
  const lumaDifferences: number[] = [];
  for (let by = 0; by < image.height; by++) {
    for (let bx = 0; bx < image.width; bx++) {
      const means = new Float64Array(channels);
      let count = 0;
      for (let y = by * 8; y < Math.min(height, by * 8 + 8); y++) {
        for (let x = bx * 8; x < Math.min(width, bx * 8 + 8); x++) {
          for (let c = 0; c < channels; c++) means[c] = means[c]! + full.data[(y * width + x) * channels + c]!;
          count++;
        }
      }
      const o = (by * image.width + bx) * channels;
      for (let c = 0; c < channels; c++) {
        means[c] = means[c]! / count;
        sum += Math.abs(means[c]! - image.data[o + c]!);
      }
      lumaDifferences.push(Math.abs(luma(means, 0) - luma(image.data, o)));
    }
  }
  lumaDifferences.sort((a, b) => a - b);
  return {
    mean: sum / (image.width * image.height * channels),
    lumaP99: lumaDifferences[Math.floor(lumaDifferences.length * 0.99)]!,
  };
}

function raw(image: RawImage) {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
}

describe('decodeProgressiveDc', () => {
  it.each([
    ['4:2:0, libjpeg’s progressive script', { progressive: true, quality: 90 }],
    ['4:4:4', { progressive: true, quality: 90, chromaSubsampling: '4:4:4' }],
    ['optimised scans', { progressive: true, optimiseScans: true }],
    ['mozjpeg defaults', { mozjpeg: true }],
  ] as const)(
    'reads the 1/8 scale of a progressive JPEG (%s) as the block means of a full decode',
    async (_, options) => {
      // Dimensions that are not multiples of the 16 px MCU, so partial blocks at the edges count.
      const bytes = await raw(scene(11, 1001, 747))
        .jpeg(options)
        .toBuffer();
      const image = decoded(bytes);
      expect(image).toMatchObject({ width: 126, height: 94, channels: 3 });
      const { mean, lumaP99 } = await distanceToBlockMeans(bytes, image);
      expect(mean).toBeLessThan(3.5); // chroma at 1/16 scale with 4:2:0 (see distanceToBlockMeans)
      expect(lumaP99).toBeLessThan(2);
    },
  );

  it('reads a grey progressive JPEG as one channel', async () => {
    const bytes = await raw(scene(12, 640, 480))
      .toColourspace('b-w')
      .jpeg({ progressive: true })
      .toBuffer();
    const image = decoded(bytes);
    expect(image).toMatchObject({ width: 80, height: 60, channels: 1 });
    const { mean, lumaP99 } = await distanceToBlockMeans(bytes, image);
    expect(mean).toBeLessThan(1);
    expect(lumaP99).toBeLessThan(2);
  });

  it('steps over restart markers: the same coefficients give the same image with or without them', async () => {
    const plain = decoded(await fixture('progressive.jpg'));
    const restarts = decoded(await fixture('progressive-restart-row.jpg'));
    expect(restarts).toMatchObject({ width: 26, height: 19, channels: 3 });
    expect(restarts.data.equals(plain.data)).toBe(true);
  });

  it('reads one DC scan per component (non-interleaved) with restarts every 3 blocks, at full DC precision', async () => {
    const plain = decoded(await fixture('progressive.jpg'));
    const separate = decoded(await fixture('dc-separate-restart3.jpg'));
    expect(separate).toMatchObject({ width: 26, height: 19, channels: 3 });
    // The progressive fixture's DC scan drops the lowest bit (Al = 1): at most a level or two apart.
    let max = 0;
    for (let i = 0; i < plain.data.length; i++) max = Math.max(max, Math.abs(plain.data[i]! - separate.data[i]!));
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(3);
    const bytes = await fixture('dc-separate-restart3.jpg');
    expect((await distanceToBlockMeans(bytes, separate)).mean).toBeLessThan(8); // a small image: edges weigh more
  });

  it('reads a grey fixture with restarts every 7 blocks as the luma of the colour one', async () => {
    const grey = decoded(await fixture('progressive-grey-restart7.jpg'));
    const colour = decoded(await fixture('progressive.jpg'));
    expect(grey).toMatchObject({ width: 26, height: 19, channels: 1 });
    for (let i = 0; i < grey.data.length; i++) {
      const [r, g, b] = [colour.data[i * 3]!, colour.data[i * 3 + 1]!, colour.data[i * 3 + 2]!];
      expect(Math.abs(grey.data[i]! - (0.299 * r + 0.587 * g + 0.114 * b))).toBeLessThan(4);
    }
  });

  it('asks for more bytes until the DC scans are in, and uses no more of the file than them', async () => {
    const bytes = await raw(scene(13, 1200, 800))
      .jpeg({ progressive: true, quality: 90 })
      .toBuffer();
    const whole = decodeProgressiveDc(bytes, true);
    if (whole.kind !== 'image') throw new Error(whole.kind);
    expect(whole.bytesUsed).toBeLessThan(bytes.length / 3);
    for (let n = 0; n < whole.bytesUsed; n += 997)
      expect(decodeProgressiveDc(bytes.subarray(0, n), false).kind).toBe('more');
    const prefix = decodeProgressiveDc(bytes.subarray(0, whole.bytesUsed), false);
    expect(prefix.kind).toBe('image');
    if (prefix.kind === 'image') expect(prefix.image.data.equals(whole.image.data)).toBe(true);
    // locateDcScans finds the same length without decoding.
    expect(locateDcScans(bytes, true)).toEqual({ kind: 'located', end: whole.bytesUsed });
    expect(locateDcScans(bytes.subarray(0, whole.bytesUsed - 1), false)).toEqual({ kind: 'more' });
    // A file that really ends there is not an image this decoder vouches for.
    expect(decodeProgressiveDc(bytes.subarray(0, whole.bytesUsed - 10), true)).toMatchObject({ kind: 'unsupported' });
  });

  it('leaves what it does not cover to libvips: baseline, CMYK, not a JPEG', async () => {
    const baseline = await raw(scene(14, 320, 240))
      .jpeg({ progressive: false })
      .toBuffer();
    expect(decodeProgressiveDc(baseline, true)).toEqual({ kind: 'unsupported', reason: 'not progressive' });
    const cmyk = await raw(scene(14, 320, 240))
      .toColourspace('cmyk')
      .jpeg({ progressive: true })
      .toBuffer();
    expect(decodeProgressiveDc(cmyk, true)).toEqual({ kind: 'unsupported', reason: '4 components' });
    expect(decodeProgressiveDc(Buffer.from('not a jpeg at all'), true)).toEqual({
      kind: 'unsupported',
      reason: 'not a JPEG',
    });
    // Colours in a wide-gamut profile need libvips' colour management; an sRGB profile does not.
    const p3 = await raw(scene(14, 320, 240))
      .jpeg({ progressive: true })
      .withIccProfile('p3')
      .toBuffer();
    expect(decodeProgressiveDc(p3, true)).toEqual({
      kind: 'unsupported',
      reason: 'an ICC profile other than sRGB (needs colour management)',
    });
    const srgb = await raw(scene(14, 320, 240))
      .jpeg({ progressive: true })
      .withIccProfile('srgb')
      .toBuffer();
    expect(decodeProgressiveDc(srgb, true).kind).toBe('image');
  });

  it('refuses a frame over the pixel limit before sizing anything by it', async () => {
    const bytes = Buffer.from(
      await raw(scene(19, 320, 240))
        .jpeg({ progressive: true })
        .toBuffer(),
    );
    // Rewrite the SOF2 frame size to 30,000 × 30,000: a tiny file claiming 900 MP.
    const sof = bytes.indexOf(Buffer.from([0xff, 0xc2]));
    bytes.writeUInt16BE(30_000, sof + 5);
    bytes.writeUInt16BE(30_000, sof + 7);
    expect(decodeProgressiveDc(bytes, true)).toEqual({
      kind: 'unsupported',
      reason: '30000 × 30000 pixels exceeds the 100 MP limit',
    });
    await expect(thumbnailFromDcScans(bytes, 84)).rejects.toThrow(/image too large: 30000 × 30000/);
  });

  it('never throws on damaged bytes: an image or "unsupported", whatever is flipped', async () => {
    const bytes = await raw(scene(15, 400, 300))
      .jpeg({ progressive: true })
      .toBuffer();
    const whole = decodeProgressiveDc(bytes, true);
    if (whole.kind !== 'image') throw new Error(whole.kind);
    const rand = mulberry32(7);
    for (let trial = 0; trial < 300; trial++) {
      const damaged = Buffer.from(bytes.subarray(0, whole.bytesUsed + 2));
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++)
        damaged[Math.floor(rand() * damaged.length)] = Math.floor(rand() * 256);
      const result = decodeProgressiveDc(damaged, rand() < 0.5);
      expect(['image', 'unsupported', 'more']).toContain(result.kind);
      if (result.kind === 'image')
        expect(result.image.data.length).toBe(result.image.width * result.image.height * result.image.channels);
    }
  });
});

describe('thumbnailFromFile on a large progressive JPEG', () => {
  let temp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    temp = await tempDir();
  });
  afterAll(async () => {
    await temp.cleanup();
  });

  it('takes the DC scans (1/8 scale) and matches the thumbnail of the same photo saved as baseline', async () => {
    // 3000 × 2600: its 1/8 scale (375 × 325) still covers the 320 px square the signals are measured on.
    const photo = scene(16, 3000, 2600);
    const progressive = temp.file('progressive.jpg');
    const baseline = temp.file('baseline.jpg');
    await raw(photo).jpeg({ progressive: true, quality: 90 }).withMetadata({ orientation: 6 }).toFile(progressive);
    await raw(photo).jpeg({ progressive: false, quality: 90 }).withMetadata({ orientation: 6 }).toFile(baseline);
    for (const size of [84, 233]) {
      const fast = await thumbnailFromFile(progressive, size);
      const reference = await thumbnailFromFile(baseline, size);
      expect(fast.from).toBe('dc-scans');
      expect(reference.from).toBeUndefined();
      // Upright (orientation 6 turns the stored landscape into a portrait) and the same pixels, near enough.
      expect(fast.source).toEqual({ width: 2600, height: 3000, format: 'jpeg' });
      let diff = 0;
      for (let i = 0; i < fast.rgb.length; i++) diff += Math.abs(fast.rgb[i]! - reference.rgb[i]!);
      expect(diff / fast.rgb.length, `mean absolute difference at ${size} px`).toBeLessThan(3);
      expect(Math.abs(fast.signals.sharpness - reference.signals.sharpness) / reference.signals.sharpness).toBeLessThan(
        0.25,
      );
    }
  });

  it('decodes a progressive JPEG whose 1/8 scale is too small, or with a wide-gamut profile, the ordinary way', async () => {
    const small = temp.file('small-progressive.jpg');
    await raw(scene(17, 1600, 1200))
      .jpeg({ progressive: true })
      .toFile(small);
    expect((await thumbnailFromFile(small, 84)).from).toBeUndefined();
    const wide = temp.file('p3-progressive.jpg');
    await raw(scene(18, 3000, 2600))
      .jpeg({ progressive: true })
      .withIccProfile('p3')
      .toFile(wide);
    expect((await thumbnailFromFile(wide, 84)).from).toBeUndefined();
    const srgb = temp.file('srgb-progressive.jpg');
    await raw(scene(18, 3000, 2600))
      .jpeg({ progressive: true })
      .withIccProfile('srgb')
      .toFile(srgb);
    expect((await thumbnailFromFile(srgb, 84)).from).toBe('dc-scans');
  });
});
