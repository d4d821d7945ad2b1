export * from './types.js';
export { TriageClient, TriageApiError } from './client.js';
export type { TriageClientOptions, RequestOptions, WaitForJobOptions, TokenSource } from './client.js';
export { parseServerSentEvents } from './sse.js';
export type { ServerSentEvent } from './sse.js';
