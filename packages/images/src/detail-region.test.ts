/** Where the full-resolution square is cut (detailRegion), on plain pixels, and through the real sharp pipeline. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detailRegion, DETAIL_CONTRAST_SHARE } from './detail-region.js';
import { orientSquare } from './exif.js';
import { tempDir } from './testing/fixtures.js';
import { sharp } from './sharp.js';
import { DETAIL_SIDE, thumbnailFromFile } from './thumbnail.js';

/** A flat grey side × side RGB square with fine checks (1 px, contrast `amplitude`) in the given rectangles. */
function checked(side: number, patches: { x: number; y: number; w: number; h: number; amplitude?: number }[]): Buffer {
  const rgb = Buffer.alloc(side * side * 3, 128);
  for (const { x, y, w, h, amplitude = 100 } of patches) {
    for (let py = y; py < y + h; py++) {
      for (let px = x; px < x + w; px++) {
        const v = (px + py) % 2 === 0 ? 128 + amplitude / 2 : 128 - amplitude / 2;
        rgb.fill(v, (py * side + px) * 3, (py * side + px) * 3 + 3);
      }
    }
  }
  return rgb;
}

const stored = { width: 6000, height: 4000 };
const thumbSide = 320;
// One DETAIL_SIDE square of the 4000 px centre square is ~31 thumbnail px: a 10 × 10 lattice of blocks.
const cell = Math.round((DETAIL_SIDE * thumbSide) / 4000);

function contains(region: { left: number; top: number; width: number; height: number }, x: number, y: number) {
  return x >= region.left && x < region.left + region.width && y >= region.top && y < region.top + region.height;
}

describe('detailRegion', () => {
  it('takes the top row of a frame without detail (nowhere tells focus; it costs least there)', () => {
    const region = detailRegion(checked(thumbSide, []), thumbSide, 1, stored, DETAIL_SIDE);
    expect(region.width).toBe(DETAIL_SIDE);
    expect(region.height).toBe(DETAIL_SIDE);
    expect(region.top).toBeLessThan(DETAIL_SIDE);
    expect(Math.abs(region.left + DETAIL_SIDE / 2 - stored.width / 2)).toBeLessThan(DETAIL_SIDE);
  });

  it('goes where the only detail is, however far down', () => {
    const region = detailRegion(
      checked(thumbSide, [{ x: 40, y: 250, w: 40, h: 40 }]),
      thumbSide,
      1,
      stored,
      DETAIL_SIDE,
    );
    // Thumbnail (60, 270) is stored (1000 + 60 × 12.5, 270 × 12.5) = (1750, 3375).
    expect(contains(region, 1750, 3375)).toBe(true);
  });

  it('prefers the detail-rich place highest in the stored file, and ignores places with too little detail', () => {
    const patches = [
      { x: 200, y: 220, w: 60, h: 60 },
      { x: 100, y: 100, w: 40, h: 40, amplitude: 90 },
      { x: 40, y: 10, w: 40, h: 30, amplitude: 100 * DETAIL_CONTRAST_SHARE * 0.8 },
    ];
    const region = detailRegion(checked(thumbSide, patches), thumbSide, 1, stored, DETAIL_SIDE);
    // The second patch: (120, 120) in the thumbnail, (2500, 1500) stored; the faint one at the top is passed over.
    expect(contains(region, 2500, 1500)).toBe(true);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'finds the same stored place whichever way the file is turned (orientation %i)',
    (orientation) => {
      // The detail sits at one place of the stored frame; the pipeline hands the upright thumbnail over.
      const storedThumb = checked(thumbSide, [{ x: 230, y: 40, w: cell, h: cell }]);
      const upright = orientSquare(storedThumb, thumbSide, orientation);
      const region = detailRegion(upright, thumbSide, orientation, stored, DETAIL_SIDE);
      const x = 1000 + (230 + cell / 2) * 12.5;
      const y = (40 + cell / 2) * 12.5;
      expect(contains(region, x, y)).toBe(true);
    },
  );

  it('is the whole short side of a frame smaller than the square, and stays inside any frame', () => {
    expect(detailRegion(checked(thumbSide, []), thumbSide, 1, { width: 300, height: 200 }, DETAIL_SIDE)).toEqual({
      left: 50,
      top: 0,
      width: 200,
      height: 200,
    });
    // A tall narrow frame: a lattice of 2 × 2 blocks over its centre square; the detail is in the lower right.
    const tall = detailRegion(
      checked(thumbSide, [{ x: 300, y: 300, w: 20, h: 20 }]),
      thumbSide,
      1,
      { width: 800, height: 4000 },
      DETAIL_SIDE,
    );
    expect(tall).toEqual({ left: 416, top: 2016, width: DETAIL_SIDE, height: DETAIL_SIDE });
    // The top row of a 3800 px short side would start 2 px above the frame: clamped to it.
    expect(detailRegion(checked(thumbSide, []), thumbSide, 1, { width: 5700, height: 3800 }, DETAIL_SIDE)).toEqual({
      left: 2468,
      top: 0,
      width: DETAIL_SIDE,
      height: DETAIL_SIDE,
    });
  });
});

describe('the full-resolution square through sharp', () => {
  let temp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    temp = await tempDir();
  });
  afterAll(async () => {
    await temp.cleanup();
  });

  /**
   * 2400 × 1600, flat but for a brighter patch of 2 px checks in the upper left (at the thumbnail's scale the
   * checks average out and the patch's edges are the detail); `blur` σ px of defocus on the whole frame.
   */
  async function photo(name: string, blur: number): Promise<string> {
    const width = 2400;
    const height = 1600;
    const data = Buffer.alloc(width * height * 3, 90);
    for (let y = 250; y < 650; y++) {
      for (let x = 500; x < 900; x++) {
        const v = (Math.floor(x / 2) + Math.floor(y / 2)) % 2 === 0 ? 230 : 110;
        data.fill(v, (y * width + x) * 3, (y * width + x) * 3 + 3);
      }
    }
    const image = sharp(data, { raw: { width, height, channels: 3 } });
    const path = temp.file(name);
    await (blur > 0 ? image.blur(blur) : image).jpeg({ quality: 95 }).toFile(path);
    return path;
  }

  it('measures focus on the detail, in the same place on a sharp frame and its soft twin, even when the centre is blank', async () => {
    const paths = [await photo('sharp.jpg', 0), await photo('soft.jpg', 1.5)];
    const crisp = await thumbnailFromFile(paths[0]!, 320, { detail: true });
    const soft = await thumbnailFromFile(paths[1]!, 320, { detail: true });
    // The same place for both (the thumbnail handed over at 320 px is the square the pipeline rendered) ...
    const regions = [crisp, soft].map((t) => detailRegion(t.rgb, 320, 1, { width: 2400, height: 1600 }, DETAIL_SIDE));
    expect(regions[1]).toEqual(regions[0]);
    // ... on the patch, away from the blank centre.
    const r = regions[0]!;
    expect(r.left < 900 && r.left + r.width > 500 && r.top < 650 && r.top + r.height > 250).toBe(true);
    expect(crisp.detail!.sharpness).toBeGreaterThan(0.5);
    expect(soft.detail!.sharpness).toBeLessThan(0.35 * crisp.detail!.sharpness);
  });
});
