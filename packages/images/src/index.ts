export { sharpCounters, sharpInFlight } from './sharp.js';
export { computeSignals, hashDistance, SIGNAL_SIDE, type QualitySignals } from './signals.js';
export {
  thumbnailFromFile,
  thumbnailFromBytes,
  thumbnailFromEmbedded,
  thumbnailFromDcScans,
  dcScalesSuffices,
  bareThumbnail,
  checkPixelLimit,
  ImageReadError,
  DETAIL_SIDE,
  type Detail,
  type Thumbnail,
  type ThumbnailOptions,
} from './thumbnail.js';
export {
  JPEG_HEAD_BYTES,
  ASPECT_TOLERANCE,
  isJpeg,
  parseJpegHead,
  findEmbeddedThumbnail,
  embeddedThumbnailFits,
  orientedSize,
  orientSquare,
  type JpegHeader,
  type EmbeddedThumbnail,
} from './exif.js';
export {
  decodeHeic,
  decodeHeicFile,
  decodeHeicInThread,
  isHeic,
  HeicDecodeError,
  type DecodedHeic,
  type ShrunkHeic,
} from './heic.js';
export {
  decodeProgressiveDc,
  locateDcScans,
  readDcScans,
  type DcImage,
  type DcDecodeResult,
  type DcLocateResult,
} from './progressive.js';
export { GLYPHS, textWidth, drawText, fillRect, type Rgb } from './font.js';
export { renderGridRaw, composeGrid, decodeRaw, type GridCell } from './grid.js';
export {
  generateSampleSet,
  writeSample,
  DEFAULT_SAMPLE_COUNT,
  type SampleFile,
  type SampleKind,
  type SampleSpec,
} from './samples.js';
/** sharp with this package's process-wide settings applied, for tools (the benchmark's corpus generator). */
export { sharp } from './sharp.js';
export { mulberry32 } from './random.js';
// Test and benchmark photo makers (hostile files, synthetic scenes, the EXIF writer): '@triage/images/testing'.
