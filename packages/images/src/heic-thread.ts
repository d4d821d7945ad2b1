/**
 * The body of `decodeHeicInThread` (heic.ts): runs in a worker_thread, decodes one HEIC with libheif-js,
 * box-reduces it, posts the pixels back (transferred, not copied) and ends. libheif-js is instantiated in
 * this thread only, so its WebAssembly memory goes away with the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { boxShrinkRgba, decodeHeic, HeicDecodeError, type HeicThreadAnswer, type HeicThreadRequest } from './heic.js';

const request = workerData as HeicThreadRequest;
let answer: HeicThreadAnswer;
const transfer: ArrayBuffer[] = [];
try {
  const decoded = await decodeHeic(request.bytes, { minSide: request.minSide });
  try {
    const factor = Math.max(1, Math.floor(Math.min(decoded.width, decoded.height) / Math.max(1, request.keepSide)));
    // Copy out of the WebAssembly heap (or reduce straight from it) into a buffer of its own, to transfer.
    const shrunk =
      factor > 1 ? boxShrinkRgba(decoded.rgba, decoded.width, decoded.height, factor) : { rgba: new Uint8Array(decoded.rgba), width: decoded.width, height: decoded.height };
    transfer.push(shrunk.rgba.buffer as ArrayBuffer);
    answer = {
      ok: true,
      rgba: shrunk.rgba.buffer as ArrayBuffer,
      width: shrunk.width,
      height: shrunk.height,
      primary: decoded.primary,
      fromThumbnail: decoded.fromThumbnail,
    };
  } finally {
    decoded.release();
  }
} catch (error) {
  answer = { ok: false, heic: error instanceof HeicDecodeError, message: error instanceof Error ? error.message : String(error) };
}
parentPort!.postMessage(answer, transfer);
