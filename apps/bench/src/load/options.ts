/** The options of `npm run load` (see load-main.ts), checked: a wrong one stops the run with exit code 2. */
import { parseArgs } from 'node:util';
import { wholeArg } from '../util.js';

export interface LoadOptions {
  only: string | undefined;
  users: number;
  photos: number;
  pollers: number;
  workerCounts: number[];
  connections: number;
  duration: number;
  jobPhotos: number;
  files: number;
  rounds: number;
  apiNodeOptions: string | undefined;
  /** --api-env's pairs, with NODE_OPTIONS from --api-node-options. */
  apiEnv: Record<string, string>;
  apiScript: string | undefined;
  workerNice: number | undefined;
  variant: string | undefined;
  candidates: string[];
  render: boolean;
  noReport: boolean;
}

function readArgs() {
  return parseArgs({
    options: {
      only: { type: 'string' },
      users: { type: 'string' },
      photos: { type: 'string' },
      pollers: { type: 'string' },
      workers: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      'job-photos': { type: 'string' },
      rounds: { type: 'string' },
      files: { type: 'string' },
      'api-node-options': { type: 'string' },
      'api-script': { type: 'string' },
      'api-env': { type: 'string' },
      'worker-nice': { type: 'string' },
      variant: { type: 'string' },
      candidate: { type: 'string', multiple: true },
      smoke: { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      'no-report': { type: 'boolean', default: false },
    },
  }).values;
}

function refuse(message: string): never {
  console.error(message);
  process.exit(2);
}

const int = (name: string, raw: string | undefined, fallback: number) => wholeArg(name, raw, fallback, 1);

function apiEnvOf(apiNodeOptions: string | undefined, pairs: string | undefined): Record<string, string> {
  const apiEnv: Record<string, string> = {};
  if (apiNodeOptions) apiEnv.NODE_OPTIONS = apiNodeOptions;
  for (const pair of (pairs ?? '').split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq < 1) refuse(`--api-env takes K=V pairs, got "${pair}"`);
    apiEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return apiEnv;
}

export function parseLoadOptions(): LoadOptions {
  const values = readArgs();
  const smoke = values.smoke;
  const sizes = {
    users: int('users', values.users, smoke ? 5 : 50),
    photos: int('photos', values.photos, smoke ? 20 : 100),
    pollers: int('pollers', values.pollers, smoke ? 20 : 200),
    workerCounts: (values.workers ?? '1,2').split(',').map((w) => int('workers', w.trim(), 1)),
    connections: int('connections', values.connections, 50),
    duration: int('duration', values.duration, smoke ? 3 : 10),
    jobPhotos: int('job-photos', values['job-photos'], smoke ? 300 : 2000),
    files: int('files', values.files, smoke ? 10 : 200),
    rounds: int('rounds', values.rounds, smoke ? 1 : 3),
  };
  const only = values.only;
  if (only !== undefined && !['fairness', 'throughput', 'transfer'].includes(only))
    refuse('--only must be fairness, throughput or transfer');
  const apiNodeOptions = values['api-node-options'];
  const apiEnv = apiEnvOf(apiNodeOptions, values['api-env']);
  const workerNice = values['worker-nice'] !== undefined ? int('worker-nice', values['worker-nice'], 0) : undefined;
  const variant = values.variant;
  if (variant !== undefined && !/^[a-z0-9-]+$/.test(variant)) refuse('--variant may hold a-z, 0-9 and - only');
  return {
    only,
    ...sizes,
    apiNodeOptions,
    apiEnv,
    apiScript: values['api-script'],
    workerNice,
    variant,
    candidates: values.candidate ?? [],
    render: values.render,
    noReport: values['no-report'],
  };
}
