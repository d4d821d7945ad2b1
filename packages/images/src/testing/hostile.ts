/**
 * Hostile photos, for the tests and the fault suite: files a user (or a broken client) can put in front of the
 * worker that are not plain camera JPEGs. Each comes with what reading it must give: a thumbnail (its upright
 * size, format and the colours of its centre crop's four quadrants, so orientation and colour handling are
 * checked by pixels), or a refusal with a reason.
 *
 * Every readable one is a picture in four flat quadrants (red, green / blue, white as the user sees it), so
 * one check covers auto-orientation, colour conversion, alpha flattening and the choice of animation frame.
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { createDeflate, deflateSync } from 'node:zlib';
import { parseJpegHead } from '../exif.js';
import { withExif } from './exif-writer.js';
import type { Rgb } from '../font.js';
import { sharp } from '../sharp.js';

export type Quadrants = readonly [Rgb, Rgb, Rgb, Rgb];

export type HostileExpectation =
  | { outcome: 'refused'; reason: RegExp }
  | {
      outcome: 'thumbnail';
      /** Upright size and format, as `Thumbnail.source` reports them. */
      source: { width: number; height: number; format: string };
      /** Top-left, top-right, bottom-left, bottom-right of the centre-cropped square, upright. */
      quadrants: Quadrants;
      /** Largest difference allowed on any channel (lossy codecs, CMYK conversion). */
      tolerance: number;
    };

export interface HostilePhoto {
  /** What makes it hostile, for test names and reports. */
  label: string;
  /** The file name a user would have uploaded. */
  name: string;
  path: string;
  expected: HostileExpectation;
  /**
   * For a JPEG that carries (or claims) an EXIF thumbnail: 'usable' — findEmbeddedThumbnail finds it and it
   * gives the expected quadrants; 'rejected' — it is found but thumbnailFromEmbedded refuses it (the caller
   * falls back to the file); 'ignored' — its pointers are out of bounds and findEmbeddedThumbnail finds none.
   */
  embedded?: 'usable' | 'rejected' | 'ignored';
}

export const RED: Rgb = [230, 20, 20];
export const GREEN: Rgb = [20, 200, 20];
export const BLUE: Rgb = [20, 20, 230];
export const WHITE: Rgb = [240, 240, 240];
/** The upright picture every readable hostile photo shows. */
export const QUADRANTS: Quadrants = [RED, GREEN, BLUE, WHITE];

const HEIC_FIXTURE = fileURLToPath(new URL('../../fixtures/quadrants.heic', import.meta.url));
const BOMB_SIDE = 30_000;
const TOO_LARGE = /^image too large: 30000 × 30000 pixels exceeds the 100 MP limit$/;

interface Raw {
  data: Buffer;
  width: number;
  height: number;
}

/** A width × height RGB picture in four flat quadrants. */
export function quadrantImage(width: number, height: number, colours: Quadrants = QUADRANTS): Raw {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++)
      data.set(colours[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]!, (y * width + x) * 3);
  }
  return { data, width, height };
}

/**
 * What a camera stores for an upright picture when it writes EXIF `orientation`: the stored image that an
 * auto-orienting viewer turns back into `upright`. (Displayed (x, y) shows stored (sx, sy), as in orientSquare.)
 */
export function storedFor(upright: Raw, orientation: number): Raw {
  const { width: W, height: H } = upright;
  const swap = orientation >= 5;
  const sw = swap ? H : W;
  const data = Buffer.alloc(upright.data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sx, sy] = (
        [
          [x, y],
          [x, y],
          [W - 1 - x, y],
          [W - 1 - x, H - 1 - y],
          [x, H - 1 - y],
          [y, x],
          [y, W - 1 - x],
          [H - 1 - y, W - 1 - x],
          [H - 1 - y, x],
        ] as const
      )[orientation]!;
      upright.data.copy(data, (sy * sw + sx) * 3, (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
  }
  return { data, width: sw, height: swap ? W : H };
}

/** Mean colour of a patch around the centre of each quadrant of a size × size raw RGB square. */
export function quadrantColours(rgb: Uint8Array, size: number): Rgb[] {
  const r = Math.max(0, Math.floor(size / 8) - 1);
  return [
    [size / 4, size / 4],
    [(3 * size) / 4, size / 4],
    [size / 4, (3 * size) / 4],
    [(3 * size) / 4, (3 * size) / 4],
  ].map(([cx, cy]) => {
    const sum = [0, 0, 0];
    let n = 0;
    const x0 = Math.floor(cx!);
    const y0 = Math.floor(cy!);
    for (let y = Math.max(0, y0 - r); y <= Math.min(size - 1, y0 + r); y++) {
      for (let x = Math.max(0, x0 - r); x <= Math.min(size - 1, x0 + r); x++) {
        for (let c = 0; c < 3; c++) sum[c]! += rgb[(y * size + x) * 3 + c]!;
        n++;
      }
    }
    return [Math.round(sum[0]! / n), Math.round(sum[1]! / n), Math.round(sum[2]! / n)] as const;
  });
}

/** Largest per-channel difference between two colours. */
export function colourDistance(a: Rgb, b: Rgb): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]), Math.abs(a[2] - b[2]));
}

/** Writes the hostile set into `dir` (which must exist) and returns it in a fixed order. */
export async function writeHostileSet(dir: string): Promise<HostilePhoto[]> {
  const photos: HostilePhoto[] = [];
  const add = async (photo: Omit<HostilePhoto, 'path'>, bytes: Buffer | string): Promise<void> => {
    const path = join(dir, photo.name);
    await writeFile(path, bytes);
    photos.push({ ...photo, path });
  };
  const readable = (
    width: number,
    height: number,
    format: string,
    quadrants: Quadrants = QUADRANTS,
    tolerance = 24,
  ): HostileExpectation => ({
    outcome: 'thumbnail',
    source: { width, height, format },
    quadrants,
    tolerance,
  });
  const photo = quadrantImage(400, 300);
  const mainJpeg = await jpeg(photo);
  const smallJpeg = await jpeg(quadrantImage(320, 240));

  await add(
    {
      label: 'truncated JPEG',
      name: 'truncated.jpg',
      expected: { outcome: 'refused', reason: /^corrupt or truncated image: \S/ },
    },
    mainJpeg.subarray(0, mainJpeg.length >> 1),
  );
  await add(
    { label: 'zero bytes', name: 'empty.jpg', expected: { outcome: 'refused', reason: /^empty file \(0 bytes\)$/ } },
    Buffer.alloc(0),
  );
  await add(
    {
      label: 'text named .jpg',
      name: 'notes.jpg',
      expected: { outcome: 'refused', reason: /^not an image: unsupported or unrecognised format$/ },
    },
    'shopping list: eggs, milk, 2 2\n',
  );
  await add(
    {
      label: 'SVG text named .jpg',
      name: 'drawing.jpg',
      expected: { outcome: 'refused', reason: /^unsupported format: svg$/ },
    },
    '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="red"/></svg>',
  );

  // Decompression bombs: a few hundred bytes to ~100 KB each, claiming 900 MP (2.7 GB as RGB).
  await add(
    {
      label: 'bomb: PNG header claiming 30,000 × 30,000',
      name: 'bomb-header.png',
      expected: { outcome: 'refused', reason: TOO_LARGE },
    },
    png(BOMB_SIDE, BOMB_SIDE, 8, 2, deflateSync(Buffer.alloc(0))),
  );
  await add(
    {
      label: 'bomb: 30,000 × 30,000 1-bit PNG that really inflates',
      name: 'bomb-deflate.png',
      expected: { outcome: 'refused', reason: TOO_LARGE },
    },
    png(BOMB_SIDE, BOMB_SIDE, 1, 0, await deflateRepeated(Buffer.alloc(1 + BOMB_SIDE / 8), BOMB_SIDE)),
  );
  await add(
    {
      label: 'bomb: JPEG frame header claiming 30,000 × 30,000',
      name: 'bomb.jpg',
      expected: { outcome: 'refused', reason: TOO_LARGE },
    },
    withFrameSize(await jpeg(quadrantImage(64, 64)), BOMB_SIDE, BOMB_SIDE),
  );
  await add(
    {
      label: 'bomb: JPEG claiming 30,000 × 30,000 with a good EXIF thumbnail',
      name: 'bomb-exif.jpg',
      expected: { outcome: 'refused', reason: TOO_LARGE },
      embedded: 'rejected',
    },
    withExif(withFrameSize(await jpeg(quadrantImage(64, 64)), BOMB_SIDE, BOMB_SIDE), {
      thumbnail: await jpeg(quadrantImage(240, 240)),
    }),
  );

  {
    // Colours inside the CMYK gamut, so that the round trip through libvips' CMYK profile keeps them within
    // about 20 levels; CMYK read as RGB, or with inverted (Adobe) inks, would miss by a hundred or more.
    const inks: Quadrants = [
      [200, 60, 50],
      [80, 160, 80],
      [60, 80, 170],
      [240, 240, 240],
    ];
    await add(
      { label: 'CMYK JPEG', name: 'cmyk.jpg', expected: readable(400, 300, 'jpeg', inks, 32) },
      await sharp(quadrantImage(400, 300, inks).data, { raw: { width: 400, height: 300, channels: 3 } })
        .toColourspace('cmyk')
        .jpeg({ quality: 90 })
        .toBuffer(),
    );
  }
  await add(
    { label: '16-bit PNG', name: 'deep.png', expected: readable(400, 300, 'png') },
    png(400, 300, 16, 2, deflateSync(rows16(photo))),
  );
  {
    // Top-left quadrant fully transparent: flattened onto white.
    const rgba = Buffer.alloc(400 * 300 * 4);
    for (let i = 0; i < 400 * 300; i++) {
      const transparent = i % 400 < 200 && i < 400 * 150;
      rgba.set([...photo.data.subarray(i * 3, i * 3 + 3), transparent ? 0 : 255], i * 4);
    }
    await add(
      {
        label: 'PNG with alpha',
        name: 'alpha.png',
        expected: readable(400, 300, 'png', [[255, 255, 255], GREEN, BLUE, WHITE]),
      },
      await sharp(rgba, { raw: { width: 400, height: 300, channels: 4 } })
        .png()
        .toBuffer(),
    );
  }
  {
    // Two frames: the picture, then its colours reversed. Policy: the first frame is the photo.
    const frames = Buffer.concat([photo.data, quadrantImage(400, 300, [WHITE, BLUE, GREEN, RED]).data]);
    const animated = () => sharp(frames, { raw: { width: 400, height: 600, channels: 3, pageHeight: 300 } });
    await add(
      { label: 'animated GIF (2 frames)', name: 'animated.gif', expected: readable(400, 300, 'gif') },
      await animated().gif().toBuffer(),
    );
    await add(
      { label: 'animated WebP (2 frames)', name: 'animated.webp', expected: readable(400, 300, 'webp') },
      await animated().webp({ quality: 90 }).toBuffer(),
    );
  }
  await add(
    { label: '1 × 1 pixel', name: 'pixel.jpg', expected: readable(1, 1, 'jpeg', [RED, RED, RED, RED]) },
    await jpeg(quadrantImage(1, 1)),
  );
  await add(
    { label: '20,000 × 100 panorama', name: 'panorama.jpg', expected: readable(20_000, 100, 'jpeg') },
    await jpeg(quadrantImage(20_000, 100)),
  );

  for (let orientation = 1; orientation <= 8; orientation++) {
    const stored = storedFor(photo, orientation);
    await add(
      {
        label: `EXIF orientation ${orientation}`,
        name: `orientation-${orientation}.jpg`,
        expected: readable(400, 300, 'jpeg'),
      },
      await sharp(stored.data, { raw: { width: stored.width, height: stored.height, channels: 3 } })
        .jpeg({ quality: 90 })
        .withMetadata({ orientation })
        .toBuffer(),
    );
  }
  for (let orientation = 1; orientation <= 8; orientation++) {
    // The embedded thumbnail is stored the way the main image is; the main image's orientation applies to both.
    const file = withExif(await jpeg(storedFor(photo, orientation)), {
      orientation,
      thumbnail: await jpeg(storedFor(quadrantImage(320, 240), orientation)),
    });
    await add(
      {
        label: `EXIF orientation ${orientation}, with an EXIF thumbnail`,
        name: `orientation-${orientation}-exif.jpg`,
        expected: readable(400, 300, 'jpeg'),
        embedded: 'usable',
      },
      file,
    );
  }

  await add(
    {
      label: 'EXIF thumbnail with damaged entropy data',
      name: 'exif-corrupt-thumbnail.jpg',
      expected: readable(400, 300, 'jpeg'),
      embedded: 'rejected',
    },
    withExif(mainJpeg, { thumbnail: damaged(smallJpeg) }),
  );
  {
    const file = withExif(mainJpeg, { thumbnail: smallJpeg });
    await add(
      {
        label: 'EXIF thumbnail claiming 2 GB, more than the file',
        name: 'exif-thumbnail-too-long.jpg',
        expected: readable(400, 300, 'jpeg'),
        embedded: 'ignored',
      },
      withThumbnailLength(file, 0x7fff_ffff),
    );
    // Still inside the file (and the head), but running past its EXIF segment into the main image's data.
    await add(
      {
        label: 'EXIF thumbnail running past its EXIF segment',
        name: 'exif-thumbnail-past-segment.jpg',
        expected: readable(400, 300, 'jpeg'),
        embedded: 'ignored',
      },
      withThumbnailLength(file, smallJpeg.length + 64),
    );
  }

  const heic = join(dir, 'photo.heic');
  await copyFile(HEIC_FIXTURE, heic);
  // 640 × 480: top-left quadrant green, the rest of the left half red, the right half blue.
  photos.push({
    label: 'HEIC (HEVC)',
    name: 'photo.heic',
    path: heic,
    expected: readable(640, 480, 'heif', [
      [0, 220, 0],
      [0, 0, 230],
      [230, 0, 0],
      [0, 0, 230],
    ]),
  });
  return photos;
}

function jpeg(image: Raw): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** A copy of `jpeg` whose frame header (SOF0) claims another size; the data stays that of the real one. */
function withFrameSize(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && out[i + 1] === 0xc0) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
  }
  throw new Error('no baseline frame header found');
}

/**
 * A JPEG with intact headers and 16 damaged bytes in the middle of its entropy-coded data, as a flipped
 * sector leaves it: libjpeg only warns ("bad Huffman code") and would decode the rest as noise.
 */
function damaged(jpeg: Buffer): Buffer {
  const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
  const dataStart = sos + 2 + jpeg.readUInt16BE(sos + 2);
  const out = Buffer.from(jpeg);
  const middle = dataStart + ((jpeg.length - dataStart) >> 1);
  for (let i = 0; i < 16; i++) out[middle + i] = (i * 37 + 11) & 0xfe; // never 0xFF: no stray markers
  return out;
}

/** Rewrites IFD1's JPEGInterchangeFormatLength (as written by withExif) to `length`. */
function withThumbnailLength(file: Buffer, length: number): Buffer {
  const current = parseJpegHead(file)?.thumbnail?.length;
  // Tag 0x0202, type LONG, count 1, little-endian, followed by the current length.
  const entry = Buffer.from([0x02, 0x02, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]);
  const at = file.indexOf(entry);
  if (current === undefined || at < 0 || file.readUInt32LE(at + 8) !== current)
    throw new Error('no IFD1 thumbnail length to rewrite');
  const out = Buffer.from(file);
  out.writeUInt32LE(length, at + 8);
  return out;
}

/** 16-bit big-endian RGB scanlines (filter byte 0) of an 8-bit picture, each value v as v × 257. */
function rows16(image: Raw): Buffer {
  const stride = 1 + image.width * 6;
  const out = Buffer.alloc(stride * image.height);
  for (let y = 0; y < image.height; y++) {
    for (let i = 0; i < image.width * 3; i++)
      out.writeUInt16BE(image.data[y * image.width * 3 + i]! * 257, y * stride + 1 + i * 2);
  }
  return out;
}

/** `row` repeated `times`, deflated as a stream: the inflated bytes are never held at once. */
async function deflateRepeated(row: Buffer, times: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = once(deflate, 'end');
  for (let i = 0; i < times; i++) if (!deflate.write(row)) await once(deflate, 'drain');
  deflate.end();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * A PNG from deflated scanlines (filter bytes included), by hand: sharp cannot be asked for a header that
 * lies about the size, nor for a file built to inflate to gigabytes.
 */
export function png(width: number, height: number, bitDepth: number, colourType: number, idat: Buffer): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer): number => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colourType, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
