/**
 * The body of `decodeHeicInThread` (heic.ts): runs in a worker_thread, decodes one HEIC with libheif-js,
 * box-reduces it (decodeHeicShrunk), posts the pixels back (transferred, not copied) and ends. libheif-js is
 * instantiated in this thread only, so its WebAssembly memory goes away with the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeHeicShrunk, HeicDecodeError, type HeicThreadAnswer, type HeicThreadRequest } from './heic.js';

const request = workerData as HeicThreadRequest;
let answer: HeicThreadAnswer;
const transfer: ArrayBuffer[] = [];
try {
  const shrunk = await decodeHeicShrunk(request.input, { minSide: request.minSide, keepSide: request.keepSide });
  const rgba =
    shrunk.rgba.buffer.byteLength === shrunk.rgba.length
      ? (shrunk.rgba.buffer as ArrayBuffer)
      : new Uint8Array(shrunk.rgba).buffer;
  transfer.push(rgba);
  answer = {
    ok: true,
    rgba,
    width: shrunk.width,
    height: shrunk.height,
    primary: shrunk.primary,
    fromThumbnail: shrunk.fromThumbnail,
  };
} catch (error) {
  answer = {
    ok: false,
    heic: error instanceof HeicDecodeError,
    message: error instanceof Error ? error.message : String(error),
  };
}
parentPort!.postMessage(answer, transfer);
