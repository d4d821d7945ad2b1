export { sharpCounters } from './sharp.js';
export { computeSignals, hashDistance, SIGNAL_SIDE, type QualitySignals } from './signals.js';
export { thumbnailFromFile, ImageReadError, type Thumbnail } from './thumbnail.js';
export { GLYPHS, textWidth, drawText, fillRect, type Rgb } from './font.js';
export { renderGridRaw, composeGrid, decodeRaw, type GridCell } from './grid.js';
export { generateSampleSet, writeSample, DEFAULT_SAMPLE_COUNT, type SampleFile, type SampleKind, type SampleSpec } from './samples.js';
