/** Request and reply schemas of the contract's routes (TypeBox): they validate, serialize and feed /docs. */
// From TypeBox itself: the type provider's module also loads TypeBox's compiler, unused here (16 MB).
import { Type, type TSchema } from '@sinclair/typebox';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ErrorReply = Type.Object(
  { detail: Type.String() },
  { additionalProperties: true, description: 'Every error: a human-readable message' },
);

export const JobParams = Type.Object({ job_id: Type.String({ maxLength: 200 }) });

/** A string enum, as OpenAPI shows it best. */
const StringEnum = <const T extends string>(values: readonly T[]) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values] });

export const JobStatusEnum = StringEnum(['pending', 'uploading', 'processing', 'completed', 'failed', 'cancelled']);
export const PhaseEnum = StringEnum(['uploading', 'grid_generation', 'coarse_pass', 'fine_pass', 'complete']);

/** A job's phase in the active list: `pending` until its first grid starts (never null). */
export const ActivePhaseEnum = StringEnum([
  'pending',
  'uploading',
  'grid_generation',
  'coarse_pass',
  'fine_pass',
  'complete',
]);

export const HealthReply = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  service: Type.String(),
  auth: Type.String(),
});

export const ActiveReply = Type.Object({
  jobs: Type.Array(
    Type.Object({
      job_id: Type.String(),
      status: JobStatusEnum,
      total_input: Type.Integer(),
      progress_percentage: Type.Number(),
      phase: ActivePhaseEnum,
      created_at: Type.String(),
    }),
  ),
});

export const FileInput = Type.Object({
  original_name: Type.String({ maxLength: 1024 }),
  storage_path: Type.String({ maxLength: 2048 }),
  thumbnail_path: Type.Optional(
    Type.String({
      maxLength: 2048,
      description: 'A smaller copy uploaded beside the original (same folder rules); used when big enough for a pass',
    }),
  ),
  size: Type.Optional(Type.Number({ minimum: 0 })),
});

/** Counts and values are checked by the handler, so that the webapp gets the contract's exact messages. */
export const StartFromStorageBody = Type.Object({
  job_id: Type.String({ maxLength: 200 }),
  files: Type.Array(FileInput),
  target: Type.Optional(Type.String({ maxLength: 50 })),
  criteria: Type.Optional(Type.String({ maxLength: 2000 })),
  passes: Type.Optional(Type.Union([Type.Number(), Type.String({ maxLength: 10 })])),
});

export const StartReply = Type.Object({
  job_id: Type.String(),
  status: Type.Literal('processing'),
  photo_count: Type.Integer(),
  credits_deducted: Type.Number(),
  credits_required: Type.Number(),
  estimated_grids: Type.Integer(),
  target: Type.String(),
  criteria: Type.String(),
  passes: Type.Integer(),
  skipped: Type.Optional(Type.Array(Type.Object({ name: Type.String(), reason: Type.String() }))),
});

export const Progress = Type.Object({
  phase: PhaseEnum,
  current_step: Type.Integer(),
  total_steps: Type.Integer(),
  percentage: Type.Number(),
  message: Type.String(),
});

export const StatusReply = Type.Object({
  job_id: Type.String(),
  status: JobStatusEnum,
  progress: Nullable(Progress),
  total_input: Type.Integer(),
  pass1_survivors: Type.Integer({ description: '0 until the coarse pass has ended' }),
  final_selected: Type.Integer({ description: '0 until the triage has completed' }),
  error_message: Nullable(Type.String()),
  created_at: Type.String(),
  completed_at: Nullable(Type.String()),
  target: Type.String(),
  criteria: Type.String(),
  passes: Type.Integer(),
  photos_failed: Type.Integer(),
  grids_done: Type.Integer(),
  grids_total: Type.Integer(),
  tokens: Type.Object({ input: Type.Integer(), output: Type.Integer() }),
  cost_usd: Type.Number(),
  handoff: Nullable(
    Type.Object(
      { handed_off: Type.Integer(), failed: Type.Integer(), last_error: Nullable(Type.String()) },
      {
        description:
          'The hand-off to scoring after proceed: photos handed off, photos that could not be (refunded), why',
      },
    ),
  ),
});

export const ResultsQuery = Type.Object({
  include: Type.Optional(Type.Union([Type.Literal('selected'), Type.Literal('all')])),
});

export const SelectedPhoto = Type.Object({
  id: Type.String(),
  original_filename: Type.String(),
  storage_path: Type.String(),
  thumbnail_url: Nullable(
    Type.String({
      description:
        'Signed, valid 1 h: a thumbnail-sized image where the storage can make one; null when the original has left storage',
    }),
  ),
  url: Nullable(Type.String({ description: 'Signed, valid 1 h: the original; null when it has left storage' })),
  rank: Type.Integer(),
  reason: Type.Optional(Type.String({ description: 'Why there are no URLs' })),
});

export const PhotoFate = Type.Object({
  id: Type.String(),
  original_filename: Type.String(),
  storage_path: Type.String(),
  fate: Type.Union([
    Type.Literal('selected'),
    Type.Literal('not_selected'),
    Type.Literal('failed'),
    Type.Literal('not_reviewed'),
  ]),
  reason: Type.String(),
  rank: Nullable(Type.Integer()),
  coarse_votes: Nullable(Type.Number()),
  fine_votes: Nullable(Type.Number()),
  quality: Nullable(Type.Number()),
  group: Nullable(
    Type.Object(
      {
        id: Type.String({ description: "id of the group's first photo" }),
        size: Type.Integer({ description: 'photos of the same scene in the job' }),
        picked: Type.Boolean({ description: 'this photo is the one of its group that was kept' }),
      },
      { description: 'its near-duplicate group (the same scene), null when it has none' },
    ),
  ),
  signals: Nullable(
    Type.Object(
      {
        sharpness: Type.Number({ description: '0..1 at thumbnail scale, 1 = crisp' }),
        noise: Nullable(Type.Number({ description: 'noise σ in 8-bit levels, at full resolution where measured' })),
        exposure: Type.Number({ description: '0..1, 1 = well exposed' }),
        clipped_highlights: Nullable(Type.Number({ description: 'share of the frame clipped to white' })),
        crushed_shadows: Nullable(Type.Number({ description: 'share of the frame crushed to black' })),
      },
      { description: 'what was measured of it; null when it could not be read' },
    ),
  ),
  flaw: Nullable(
    Type.String({
      description: 'a severe technical flaw: blurred, noisy, blown highlights, too dark, too bright, badly exposed',
    }),
  ),
});

export const ResultsReply = Type.Object({
  job_id: Type.String(),
  status: JobStatusEnum,
  selected_photos: Type.Array(SelectedPhoto),
  total_input: Type.Integer(),
  pass1_survivors: Type.Integer({ description: '0 until the coarse pass has ended' }),
  final_selected: Type.Integer({ description: '0 until the triage has completed' }),
  target: Type.String(),
  criteria: Type.String(),
  error_message: Nullable(Type.String()),
  photos_failed: Type.Integer(),
  photos: Type.Optional(Type.Array(PhotoFate)),
});

// Null first: with type coercion on, an empty body would otherwise be coerced into [''].
export const ProceedBody = Type.Union([
  Type.Null(),
  Type.Object({
    photo_ids: Type.Optional(
      Type.Array(Type.Union([Type.String({ maxLength: 100 }), Type.Integer()]), { maxItems: 2000 }),
    ),
  }),
  Type.Array(Type.Union([Type.String({ maxLength: 100 }), Type.Integer()]), { maxItems: 2000 }),
]);

export const ProceedReply = Type.Object({
  queued_count: Type.Integer(),
  credits_deducted: Type.Number(),
  credits_required: Type.Number(),
});

export const MessageReply = Type.Object({ message: Type.String() });

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorReply]));
