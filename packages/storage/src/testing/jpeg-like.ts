/**
 * Objects that look like JPEGs to the local Storage server (which reads their pixel size from the SOF0
 * header for its transform limits) without being photos: a header, then `size` random bytes in all.
 */
import { randomBytes } from 'node:crypto';

export function jpegLike(size: number, width: number, height: number): Buffer {
  // SOI, then a real SOF0: 8-bit, height, width, three components (Y 2×2, Cb and Cr 1×1).
  const sof0 = [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 0x03];
  const components = [1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  const head = Buffer.from([0xff, 0xd8, ...sof0, ...components]);
  return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
}
