/** The upload and ZIP section: the API's peak RSS during each transfer, the targets met or not. */
import { hostLine } from '../report.js';
import { f0, keyed, loadSaved, loadText, MB, mbs, met, s1, type SectionContext } from './sections.js';
import type { MemoryRun, TransferResult } from './transfer.js';

/** The same transfer with NODE_OPTIONS=--max-semi-space-size=1 (a candidate run), when one was saved. */
function semiNote(sc: SectionContext, which: 'upload' | 'download'): string {
  if (sc.variant) return '';
  const notes: string[] = [];
  for (const mbSemi of [1, 2, 4]) {
    const saved = loadSaved<TransferResult>(sc.workDir, `load-api-transfer-${sc.files}-semi-space-${mbSemi}`);
    const r = saved?.data[which];
    if (!saved || !r) continue;
    notes.push(
      `NODE_OPTIONS=--max-semi-space-size=${mbSemi}: ${mbs(r.apiPeakRss)} (idle ${mbs(r.apiIdleRss)}), ${s1(r.ms)} (${saved.date})`,
    );
  }
  return notes.length > 0
    ? `. The same transfer with a smaller young generation for the API (\`--api-node-options=--max-semi-space-size=N --variant semi-space-N\`; not in the start scripts yet): ${notes.join('; ')}`
    : '';
}

export function transferSection(sc: SectionContext, t: TransferResult, date: string): string {
  const key = keyed(sc, `load-api-transfer-${t.upload.files}`);
  const row = (r: MemoryRun) =>
    `| ${r.label} | ${r.status} | ${f0(r.bytes / MB)} MB in ${s1(r.ms)} (${f0(r.bytes / MB / (r.ms / 1000))} MB/s) | ${mbs(r.apiPeakRss)} (idle ${mbs(r.apiIdleRss)}, start-up peak ${mbs(r.apiStartupPeak)}${r.peakReset ? '' : ', not reset: the peak includes start-up'}) | ${r.load.loadAtStart.toFixed(2)} / ${r.load.loadMax.toFixed(2)} |`;
  const up = t.upload;
  const down = t.download;
  const lines = [
    `<!-- bench:${key} -->`,
    `## API: memory during a ${up.files} × 8 MB upload and a ${up.files}-file ZIP${sc.candidate} — ${date}`,
    '',
    hostLine(sc.host, `; load average (1 min) ${loadText(up.load)}`),
    '',
    `Setup (\`npm run load -- --only transfer\`): a fresh API process (MALLOC_ARENA_MAX=2, LOG_LEVEL=info, HS256 tokens) for each transfer; half a second after it answers, its VmHWM (the start-up peak) is read and reset to the current RSS (\`5\` to /proc/<pid>/clear_refs), so that the peak reported is the transfer's own. ` +
      `Upload: ${up.files} files of 8 MiB (a small real JPEG followed by filler) as one multipart POST /start, built as a stream: a FormData of file-backed Blobs (\`fs.openAsBlob\`) that fetch reads from disk as it sends. ` +
      `Download: the accepted job marked completed with all ${up.files} photos picked (through the store: no worker needed for the route), its ZIP read by this process and counted.`,
    '',
    '| transfer | HTTP | bytes, time | API peak RSS (VmHWM) | load avg start / max |',
    '|---|---|---|---|---|',
    row(up),
    ...(down ? [row(down)] : []),
    '',
    '| target (issue 5, item 6) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| ${up.files} × 8 MB multipart upload: API peak RSS < 128 MB | ${mbs(up.apiPeakRss)} | **${up.status === 200 ? met(up.apiPeakRss < 128 * MB) : 'not met'}** | ` +
      `${up.status !== 200 ? `the upload failed: ${up.detail}` : up.apiPeakRss < 128 * MB ? `parts are streamed to storage; the idle process is already ${mbs(up.apiIdleRss)}` : `not the streaming (every part goes to storage as it arrives) but V8's young generation: its 16 MB semi-spaces fill with the parts' short-lived Buffers, whose memory returns only when a scavenge collects them, and the idle process is already ${mbs(up.apiIdleRss)}${semiNote(sc, 'upload')}`} |`,
    down
      ? `| ZIP of ${down.files} picks of 8 MB: API peak RSS < 128 MB | ${mbs(down.apiPeakRss)} (${f0(down.bytes / MB)} MB sent) | **${down.status === 200 ? met(down.apiPeakRss < 128 * MB) : 'not met'}** | ` +
        `${down.apiPeakRss < 128 * MB ? `entries are stored and read lazily, one at a time; the idle process is already ${mbs(down.apiIdleRss)}` : `entries are read lazily, one at a time; as for the upload, the read Buffers wait in V8's young generation for a scavenge, over an idle footprint of ${mbs(down.apiIdleRss)}${semiNote(sc, 'download')}`} |`
      : `| ZIP: API peak RSS < 128 MB | — | **not measured** | the upload did not produce a job |`,
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}
