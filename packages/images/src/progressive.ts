/**
 * A progressive JPEG at 1/8 scale from its DC scans alone, in plain TypeScript.
 *
 * Why: libjpeg decodes a progressive JPEG into a coefficient buffer of the whole image before it can emit a
 * single row, whatever the output scale: 72 MB for a 24 MP 4:2:0 photo (2 bytes × 64 coefficients per 8 × 8
 * block, 1.5 blocks per luma block), and every scan of the file read and Huffman-decoded. An 1/8-scale image
 * is the blocks' DC coefficients and nothing else (an 8 × 8 inverse DCT of a lone DC term is a flat block
 * of DC × q / 8 + 128: libjpeg's own 1/8 scaling computes exactly that), and a progressive file sends all of
 * them first, in its DC scan(s). Decoding those scans only costs two bytes per block (1/64 of the buffer),
 * reads a few hundred KB of a 6–10 MB file, and is several times faster than the full decode.
 *
 * The DC-first scans are decoded at the precision they carry: a later DC refinement scan (successive
 * approximation, usually the file's middle) adds the lowest bit (q / 8 of a level, below one level for
 * common tables) and is not read.
 *
 * Anything this does not cover (arithmetic coding, 12-bit samples, CMYK, a DNL-defined height, an ICC
 * profile other than sRGB, damaged entropy data) is reported as unsupported, and the caller decodes the file
 * the ordinary way.
 */

import { MAX_INPUT_PIXELS } from './limits.js';
import { clampByte } from './pixels.js';

/** An 1/8-scale image: interleaved 8-bit samples, grey (1 channel) or sRGB (3). */
export interface DcImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Buffer;
  /** The full image's size, as stored (before any EXIF orientation). */
  stored: { width: number; height: number };
}

export type DcDecodeResult =
  | {
      kind: 'image';
      image: DcImage;
      /** Bytes of the file the decode needs: through the marker after its last DC scan. */ bytesUsed: number;
    }
  /** The bytes end before the last DC scan does: call again with more of the file. */
  | { kind: 'more' }
  | { kind: 'unsupported'; reason: string };

interface FrameComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Set by the component's DC-first scan: the quantisation table's DC step then in force. */
  q0?: number;
  /** DC coefficients (already shifted by the scan's Al), one per block of the MCU-padded plane. */
  dc?: Int16Array;
}

interface Frame {
  width: number;
  height: number;
  components: FrameComponent[];
  hMax: number;
  vMax: number;
  mcusX: number;
  mcusY: number;
}

interface HuffmanTable {
  /** Largest code of each length 1..16 (index = length), -1 when none. */
  maxCode: Int32Array;
  /** Index in `values` of the first code of each length, minus that code. */
  offset: Int32Array;
  values: Uint8Array;
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DQT = 0xdb;
const DHT = 0xc4;
const DRI = 0xdd;
const SOF2 = 0xc2;
const APP2 = 0xe2;
const APP14 = 0xee;

class Unsupported extends Error {}

/**
 * Decodes the 1/8-scale image of a progressive JPEG from `bytes`, the file's first bytes (or all of it when
 * `complete`). Returns 'more' when the DC scans run past the end of a partial buffer.
 */
export function decodeProgressiveDc(bytes: Uint8Array, complete: boolean): DcDecodeResult {
  try {
    const scans = walk(bytes, complete, true);
    return scans.kind === 'more'
      ? scans
      : { kind: 'image', image: toImage(scans.frame, scans.adobeTransform), bytesUsed: scans.end };
  } catch (error) {
    if (error instanceof Unsupported) return { kind: 'unsupported', reason: error.message };
    throw error;
  }
}

export type DcLocateResult =
  | { kind: 'located'; /** Bytes the decode needs (see DcDecodeResult.bytesUsed). */ end: number }
  | { kind: 'more' }
  | { kind: 'unsupported'; reason: string };

/**
 * How much of a progressive JPEG `decodeProgressiveDc` needs, from its first bytes: the markers are walked and
 * the scans' ends found (a byte search), nothing is Huffman-decoded. For fetching just that much of a file
 * from storage; damaged entropy data is only found by the decode itself.
 */
export function locateDcScans(bytes: Uint8Array, complete: boolean): DcLocateResult {
  try {
    const scans = walk(bytes, complete, false);
    return scans.kind === 'more' ? scans : { kind: 'located', end: scans.end };
  } catch (error) {
    if (error instanceof Unsupported) return { kind: 'unsupported', reason: error.message };
    throw error;
  }
}

/** Of a progressive JPEG, the first read past what is in: most 24 MP files' DC scans end within 512 KB (~200 KB). */
const DC_FIRST_READ = 512 * 1024;

/**
 * A progressive JPEG's first bytes through its DC scans (what `decodeProgressiveDc` needs), from `head`, the
 * bytes already read (`complete` when they are the whole file), and `readRange(start, end)` for more: to
 * 512 KB, then doubling. Undefined when the file's markers show a layout the decoder leaves to libvips.
 */
export async function readDcScans(
  head: Buffer,
  complete: boolean,
  readRange: (start: number, end: number) => Promise<Buffer>,
): Promise<Buffer | undefined> {
  let bytes = head;
  for (;;) {
    const located = locateDcScans(bytes, complete);
    if (located.kind === 'located') return bytes.subarray(0, located.end);
    if (located.kind === 'unsupported') return undefined;
    const want = Math.max(DC_FIRST_READ, bytes.length * 2);
    const more = await readRange(bytes.length, want);
    complete = more.length < want - bytes.length;
    bytes = Buffer.concat([bytes, more]);
  }
}

/** The DC scans are in: the frame (with every component's DC plane when they were decoded), and where they end. */
type Walked = { kind: 'scans'; frame: Frame; adobeTransform: number | undefined; end: number } | { kind: 'more' };

/** What the segments before a scan have set: tables, the frame, the restart interval, colour markers. */
interface Headers {
  quant: Map<number, Uint16Array>;
  dcTables: Map<number, HuffmanTable>;
  frame: Frame | undefined;
  restartInterval: number;
  adobeTransform: number | undefined;
  iccChunks: { sequence: number; bytes: Uint8Array }[];
}

/** Walks the file's segments and scans up to the end of the last component's DC-first scan. */
function walk(bytes: Uint8Array, complete: boolean, decodeScans: boolean): Walked {
  const more = (): Walked => {
    if (complete) throw new Unsupported('file ends before its DC scans do');
    return { kind: 'more' };
  };
  if (bytes.length < 2) return more();
  if (bytes[0] !== 0xff || bytes[1] !== SOI) throw new Unsupported('not a JPEG');

  const headers: Headers = {
    quant: new Map(),
    dcTables: new Map(),
    frame: undefined,
    restartInterval: 0,
    adobeTransform: undefined,
    iccChunks: [],
  };
  const covered = new Set<FrameComponent>();
  let pos = 2;

  for (;;) {
    // A marker: 0xFF, any fill bytes (more 0xFF), the code.
    if (pos >= bytes.length) return more();
    if (bytes[pos] !== 0xff) throw new Unsupported(`expected a marker at byte ${pos}`);
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) return more();
    const marker = bytes[pos++]!;
    if (marker === EOI) throw new Unsupported('the file ends before every component has a DC scan');
    if (marker === SOI || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // no length
    if (pos + 2 > bytes.length) return more();
    const length = (bytes[pos]! << 8) | bytes[pos + 1]!;
    if (length < 2) throw new Unsupported(`bad segment length at byte ${pos}`);
    const end = pos + length;
    if (end > bytes.length) return more();
    const segment = bytes.subarray(pos + 2, end);

    if (marker !== SOS) {
      readSegment(marker, segment, headers);
      pos = end;
      continue;
    }
    const frame = headers.frame;
    if (!frame) throw new Unsupported('scan before the frame header');
    const dataEnd = readScan(bytes, segment, end, frame, headers, covered, decodeScans);
    if (dataEnd < 0) return more();
    if (covered.size === frame.components.length) {
      // Through the marker that ends the scan: how a reader knows the scan is whole.
      return { kind: 'scans', frame, adobeTransform: headers.adobeTransform, end: dataEnd + 2 };
    }
    pos = dataEnd;
  }
}

/** Takes in a segment other than a scan; refuses a frame that is not progressive Huffman-coded. */
function readSegment(marker: number, segment: Uint8Array, headers: Headers): void {
  if (marker === SOF2) {
    if (headers.frame) throw new Unsupported('more than one frame');
    headers.frame = parseFrame(segment);
  } else if (marker >= 0xc0 && marker <= 0xcf && marker !== DHT && marker !== 0xc8 && marker !== 0xcc) {
    throw new Unsupported(
      marker === 0xc0 || marker === 0xc1
        ? 'not progressive'
        : `frame type 0x${marker.toString(16)} (arithmetic, lossless or hierarchical)`,
    );
  } else if (marker === 0xcc) {
    throw new Unsupported('arithmetic coding');
  } else if (marker === DQT) {
    parseQuantTables(segment, headers.quant);
  } else if (marker === DHT) {
    parseHuffmanTables(segment, headers.dcTables);
  } else if (marker === DRI) {
    if (segment.length < 2) throw new Unsupported('short DRI segment');
    headers.restartInterval = (segment[0]! << 8) | segment[1]!;
  } else if (marker === APP2 && segment.length >= 14 && latin1(segment, 0, 12) === 'ICC_PROFILE\0') {
    headers.iccChunks.push({ sequence: segment[12]!, bytes: segment.subarray(14) });
  } else if (marker === APP14 && segment.length >= 12 && latin1(segment, 0, 5) === 'Adobe') {
    headers.adobeTransform = segment[11];
  }
}

/**
 * A scan whose data starts at `dataStart`: a DC-first scan marks its components `covered` with their DC step
 * (and decodes their DC planes when `decodeScans`); any other scan must follow its components' DC-first
 * scans. Returns the index of the marker that ends the scan's data, or -1 when the data runs past `bytes`.
 */
function readScan(
  bytes: Uint8Array,
  segment: Uint8Array,
  dataStart: number,
  frame: Frame,
  headers: Headers,
  covered: Set<FrameComponent>,
  decodeScans: boolean,
): number {
  if (headers.iccChunks.length > 0 && !isSrgbProfile(headers.iccChunks))
    throw new Unsupported('an ICC profile other than sRGB (needs colour management)');
  const scan = parseScanHeader(segment, frame);
  const dataEnd = findScanEnd(bytes, dataStart);
  if (dataEnd < 0) return dataEnd;
  const isDcFirst = scan.ss === 0 && scan.se === 0 && scan.ah === 0;
  if (isDcFirst) {
    for (const component of scan.components) {
      if (covered.has(component)) throw new Unsupported('a second DC-first scan for one component');
      covered.add(component);
      const table = headers.quant.get(component.tq);
      if (!table) throw new Unsupported(`quantisation table ${component.tq} missing`);
      component.q0 = table[0]!;
    }
    if (decodeScans) decodeDcScan(bytes, dataStart, dataEnd, frame, scan, headers.dcTables, headers.restartInterval);
  } else if (scan.components.some((component) => !covered.has(component))) {
    throw new Unsupported('an AC or refinement scan before the component’s DC scan');
  }
  return dataEnd;
}

function parseFrame(segment: Uint8Array): Frame {
  if (segment.length < 6) throw new Unsupported('short frame header');
  const precision = segment[0]!;
  if (precision !== 8) throw new Unsupported(`${precision}-bit samples`);
  const height = (segment[1]! << 8) | segment[2]!;
  const width = (segment[3]! << 8) | segment[4]!;
  const count = segment[5]!;
  if (height === 0 || width === 0) throw new Unsupported('no height in the frame header (DNL)');
  // The planes are sized by the header: a bomb is refused before anything is allocated.
  if (width * height > MAX_INPUT_PIXELS)
    throw new Unsupported(`${width} × ${height} pixels exceeds the ${MAX_INPUT_PIXELS / 1_000_000} MP limit`);
  if (count !== 1 && count !== 3) throw new Unsupported(`${count} components`);
  if (segment.length < 6 + count * 3) throw new Unsupported('short frame header');
  const components: FrameComponent[] = [];
  for (let i = 0; i < count; i++) {
    const o = 6 + i * 3;
    const h = segment[o + 1]! >> 4;
    const v = segment[o + 1]! & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw new Unsupported(`sampling factors ${h} × ${v}`);
    components.push({ id: segment[o]!, h, v, tq: segment[o + 2]! });
  }
  const hMax = Math.max(...components.map((c) => c.h));
  const vMax = Math.max(...components.map((c) => c.v));
  return {
    width,
    height,
    components,
    hMax,
    vMax,
    mcusX: Math.ceil(width / (8 * hMax)),
    mcusY: Math.ceil(height / (8 * vMax)),
  };
}

function parseQuantTables(segment: Uint8Array, quant: Map<number, Uint16Array>): void {
  let o = 0;
  while (o < segment.length) {
    const pq = segment[o]! >> 4;
    const tq = segment[o]! & 15;
    const wide = pq === 1;
    const size = 1 + 64 * (wide ? 2 : 1);
    if (pq > 1 || o + size > segment.length) throw new Unsupported('bad quantisation table');
    const table = new Uint16Array(64);
    for (let k = 0; k < 64; k++)
      table[k] = wide ? (segment[o + 1 + 2 * k]! << 8) | segment[o + 2 + 2 * k]! : segment[o + 1 + k]!;
    quant.set(tq, table);
    o += size;
  }
}

function parseHuffmanTables(segment: Uint8Array, dcTables: Map<number, HuffmanTable>): void {
  let o = 0;
  while (o < segment.length) {
    if (o + 17 > segment.length) throw new Unsupported('bad Huffman table');
    const tc = segment[o]! >> 4;
    const th = segment[o]! & 15;
    const counts = segment.subarray(o + 1, o + 17);
    let total = 0;
    for (const count of counts) total += count;
    if (o + 17 + total > segment.length || total > 256) throw new Unsupported('bad Huffman table');
    const values = segment.slice(o + 17, o + 17 + total);
    if (tc === 0) dcTables.set(th, buildTable(counts, values));
    o += 17 + total;
  }
}

/** The canonical decoding tables of ITU-T T.81 F.2.2.3 (MAXCODE, VALPTR − MINCODE). */
function buildTable(counts: Uint8Array, values: Uint8Array): HuffmanTable {
  const maxCode = new Int32Array(18).fill(-1);
  const offset = new Int32Array(18);
  let code = 0;
  let index = 0;
  for (let length = 1; length <= 16; length++) {
    const count = counts[length - 1]!;
    offset[length] = index - code;
    if (count > 0) {
      code += count;
      index += count;
      maxCode[length] = code - 1;
    }
    if (code > 1 << length) throw new Unsupported('bad Huffman table (over-subscribed)');
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff; // a sentinel: a code longer than 16 bits is corrupt data
  return { maxCode, offset, values };
}

interface ScanHeader {
  components: FrameComponent[];
  dcTables: number[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

function parseScanHeader(segment: Uint8Array, frame: Frame): ScanHeader {
  const count = segment[0] ?? 0;
  if (count < 1 || count > 4 || segment.length < 1 + count * 2 + 3) throw new Unsupported('bad scan header');
  const components: FrameComponent[] = [];
  const dcTables: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = segment[1 + i * 2]!;
    const component = frame.components.find((c) => c.id === id);
    if (!component) throw new Unsupported(`scan names unknown component ${id}`);
    components.push(component);
    dcTables.push(segment[2 + i * 2]! >> 4);
  }
  const o = 1 + count * 2;
  return {
    components,
    dcTables,
    ss: segment[o]!,
    se: segment[o + 1]!,
    ah: segment[o + 2]! >> 4,
    al: segment[o + 2]! & 15,
  };
}

/** Index of the marker that ends the entropy-coded data starting at `from` (restart markers belong to it), or -1. */
function findScanEnd(bytes: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    i = bytes.indexOf(0xff, i);
    if (i < 0 || i + 1 >= bytes.length) return -1;
    const next = bytes[i + 1]!;
    if (next !== 0 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) return i;
    i += next === 0xff ? 1 : 2;
  }
}

/** The entropy-coded bits of a scan: byte stuffing removed; restart markers are stepped over by `restart`. */
class BitReader {
  private pos: number;
  private byte = 0;
  private left = 0;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  bit(): number {
    if (this.left === 0) this.fill();
    this.left--;
    return (this.byte >> this.left) & 1;
  }

  bits(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) value = (value << 1) | this.bit();
    return value;
  }

  private fill(): void {
    if (this.pos >= this.end) throw new Unsupported('damaged DC scan (runs past its end)');
    const byte = this.bytes[this.pos]!;
    if (byte === 0xff) {
      if (this.bytes[this.pos + 1] !== 0) throw new Unsupported('damaged DC scan (marker inside an MCU)');
      this.pos += 2;
    } else {
      this.pos++;
    }
    this.byte = byte;
    this.left = 8;
  }

  /** Drops the bits left in the current byte and steps over the restart marker that must follow. */
  restart(): void {
    this.left = 0;
    while (this.pos < this.end && this.bytes[this.pos] === 0xff && this.bytes[this.pos + 1] === 0xff) this.pos++;
    const marker = this.bytes[this.pos + 1] ?? 0;
    if (this.bytes[this.pos] !== 0xff || marker < 0xd0 || marker > 0xd7)
      throw new Unsupported('damaged DC scan (restart marker missing)');
    this.pos += 2;
  }
}

function decodeSymbol(reader: BitReader, table: HuffmanTable): number {
  let code = reader.bit();
  let length = 1;
  while (code > table.maxCode[length]!) {
    code = (code << 1) | reader.bit();
    length++;
  }
  if (length > 16) throw new Unsupported('damaged DC scan (bad Huffman code)');
  const value = table.values[table.offset[length]! + code];
  if (value === undefined) throw new Unsupported('damaged DC scan (bad Huffman code)');
  return value;
}

/** One DC difference: its size category from the Huffman code, then that many bits (T.81 F.2.2.1). */
function decodeDifference(reader: BitReader, table: HuffmanTable): number {
  const size = decodeSymbol(reader, table);
  if (size === 0) return 0;
  if (size > 11) throw new Unsupported('damaged DC scan (difference out of range)');
  const bits = reader.bits(size);
  return bits < 1 << (size - 1) ? bits - (1 << size) + 1 : bits;
}

/** A DC-first scan being decoded: its bits, its components' Huffman tables and DC predictions. */
interface DcScanState {
  reader: BitReader;
  huffman: HuffmanTable[];
  predictions: Int32Array;
  /** The scan's point transform: each DC is stored shifted left by it. */
  al: number;
  /** Called before each MCU (each block of a one-component scan): steps over a restart marker when one is due. */
  step: () => void;
}

/** Decodes a DC-first scan's data (`start` to `end`) into its components' DC planes. */
function decodeDcScan(
  bytes: Uint8Array,
  start: number,
  end: number,
  frame: Frame,
  scan: ScanHeader,
  tables: Map<number, HuffmanTable>,
  restartInterval: number,
): void {
  const reader = new BitReader(bytes, start, end);
  const components = scan.components;
  const huffman = scan.dcTables.map((id) => {
    const table = tables.get(id);
    if (!table) throw new Unsupported(`DC Huffman table ${id} missing`);
    return table;
  });
  const predictions = new Int32Array(components.length);
  for (const component of components)
    component.dc = new Int16Array(frame.mcusX * component.h * frame.mcusY * component.v);
  let units = 0;
  const step = (): void => {
    if (restartInterval > 0 && units > 0 && units % restartInterval === 0) {
      reader.restart();
      predictions.fill(0);
    }
    units++;
  };
  const state: DcScanState = { reader, huffman, predictions, al: scan.al, step };
  if (components.length === 1) decodeComponentBlocks(state, frame, components[0]!);
  else decodeInterleavedMcus(state, frame, components);
}

/** Non-interleaved: the component's own blocks, row by row, without the MCU padding. */
function decodeComponentBlocks(state: DcScanState, frame: Frame, component: FrameComponent): void {
  const { reader, predictions, al, step } = state;
  const table = state.huffman[0]!;
  const stride = frame.mcusX * component.h;
  const blocksX = Math.ceil(Math.ceil((frame.width * component.h) / frame.hMax) / 8);
  const blocksY = Math.ceil(Math.ceil((frame.height * component.v) / frame.vMax) / 8);
  const dc = component.dc!;
  for (let by = 0; by < blocksY; by++) {
    for (let bx = 0; bx < blocksX; bx++) {
      step();
      const prediction = predictions[0]! + decodeDifference(reader, table);
      predictions[0] = prediction;
      dc[by * stride + bx] = prediction << al;
    }
  }
}

/** Interleaved: MCU by MCU, each component's h × v blocks in turn. */
function decodeInterleavedMcus(state: DcScanState, frame: Frame, components: FrameComponent[]): void {
  const { reader, huffman, predictions, al, step } = state;
  for (let my = 0; my < frame.mcusY; my++) {
    for (let mx = 0; mx < frame.mcusX; mx++) {
      step();
      for (let c = 0; c < components.length; c++) {
        const component = components[c]!;
        const table = huffman[c]!;
        const stride = frame.mcusX * component.h;
        const dc = component.dc!;
        for (let v = 0; v < component.v; v++) {
          const row = (my * component.v + v) * stride + mx * component.h;
          for (let h = 0; h < component.h; h++) {
            const prediction = predictions[c]! + decodeDifference(reader, table);
            predictions[c] = prediction;
            dc[row + h] = prediction << al;
          }
        }
      }
    }
  }
}

/** The DC planes as samples (libjpeg's 1 × 1 inverse DCT), chroma replicated to full scale, then sRGB. */
function toImage(frame: Frame, adobeTransform: number | undefined): DcImage {
  const width = Math.ceil(frame.width / 8);
  const height = Math.ceil(frame.height / 8);
  const planes = frame.components.map((component) => {
    const stride = frame.mcusX * component.h;
    const q = component.q0!;
    const dc = component.dc!;
    const plane = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const row = Math.floor((y * component.v) / frame.vMax) * stride;
      for (let x = 0; x < width; x++) {
        const value = ((dc[row + Math.floor((x * component.h) / frame.hMax)]! * q + 4) >> 3) + 128;
        plane[y * width + x] = value < 0 ? 0 : value > 255 ? 255 : value;
      }
    }
    return plane;
  });
  const stored = { width: frame.width, height: frame.height };
  if (planes.length === 1)
    return {
      width,
      height,
      channels: 1,
      data: Buffer.from(planes[0]!.buffer, planes[0]!.byteOffset, planes[0]!.length),
      stored,
    };

  const [a, b, c] = planes as [Uint8Array, Uint8Array, Uint8Array];
  const data = Buffer.allocUnsafe(width * height * 3);
  const ids = frame.components.map((component) => component.id);
  // As libjpeg decides: an Adobe marker's transform flag, else components named R, G, B, else YCbCr.
  const rgb =
    adobeTransform !== undefined ? adobeTransform === 0 : ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42;
  for (let i = 0, o = 0; i < a.length; i++, o += 3) {
    if (rgb) {
      data[o] = a[i]!;
      data[o + 1] = b[i]!;
      data[o + 2] = c[i]!;
      continue;
    }
    const y = a[i]!;
    const cb = b[i]! - 128;
    const cr = c[i]! - 128;
    data[o] = clampByte(y + 1.402 * cr);
    data[o + 1] = clampByte(y - 0.344136 * cb - 0.714136 * cr);
    data[o + 2] = clampByte(y + 1.772 * cb);
  }
  return { width, height, channels: 3, data, stored };
}

/**
 * Whether an embedded ICC profile (APP2 chunks, in any order) can be taken as sRGB: a grey profile, or one
 * whose description names sRGB, as camera and export profiles do. Others (Adobe RGB, Display P3, …) need
 * libvips' colour management, which only the ordinary decode applies.
 */
function isSrgbProfile(chunks: readonly { sequence: number; bytes: Uint8Array }[]): boolean {
  const icc = Buffer.concat([...chunks].sort((a, b) => a.sequence - b.sequence).map((chunk) => chunk.bytes));
  if (icc.length < 132) return false;
  if (icc.toString('latin1', 16, 20) === 'GRAY') return true;
  const count = icc.readUInt32BE(128);
  for (let i = 0; i < count && 132 + i * 12 + 12 <= icc.length; i++) {
    const entry = 132 + i * 12;
    if (icc.toString('latin1', entry, entry + 4) !== 'desc') continue;
    const offset = icc.readUInt32BE(entry + 4);
    const tag = icc.toString('latin1', offset, offset + icc.readUInt32BE(entry + 8));
    // 'desc' (ICC v2) holds ASCII, 'mluc' (v4) UTF-16BE: look for the name in either.
    return tag.replaceAll('\0', '').includes('sRGB');
  }
  return false;
}

function latin1(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}
