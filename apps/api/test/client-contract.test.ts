/**
 * The typed client reads what the API sends, and sends what it accepts. Fastify serialises every reply
 * through its TypeBox schema (fields outside it are dropped), so the schemas are the wire's truth. The
 * client's types are deliberately looser (fields the old service did not send are optional, so that they
 * describe either server): every reply the schema allows must be assignable to the client's type, and the
 * client must name no field the schema lacks. These are type checks: `npm test` typechecks the tests before
 * running them, and a drift on either side fails it there.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type * as Client from '@triage/client';
import { describe, expectTypeOf, it } from 'vitest';
import type * as Schemas from '../src/schemas.js';

type Wire<S extends TSchema> = Static<S>;
/** Named keys, without index signatures (`[extra: string]: unknown`). */
type Named<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
/** Client fields the schema does not have (should be never). */
type Unknown<C, S extends TSchema> = Exclude<Named<C>, keyof Wire<S>>;

describe('@triage/client types against the API’s schemas', () => {
  it('every reply the schemas allow is one the client types accept', () => {
    expectTypeOf<Wire<typeof Schemas.StatusReply>>().toExtend<Client.TriageStatus>();
    expectTypeOf<Wire<typeof Schemas.ResultsReply>>().toExtend<Client.Results>();
    expectTypeOf<Wire<typeof Schemas.StartReply>>().toExtend<Client.StartResponse>();
    expectTypeOf<Wire<typeof Schemas.ActiveReply>>().toExtend<Client.ActiveJobs>();
    expectTypeOf<Wire<typeof Schemas.HealthReply>>().toExtend<Client.HealthResponse>();
    expectTypeOf<Wire<typeof Schemas.ProceedReply>>().toExtend<Client.ProceedResponse>();
    expectTypeOf<Wire<typeof Schemas.MessageReply>>().toExtend<Client.MessageResponse>();
    expectTypeOf<Wire<typeof Schemas.ErrorReply>>().toExtend<Client.ApiError>();
  });

  it('the client names no field the API does not send', () => {
    expectTypeOf<Unknown<Client.TriageStatus, typeof Schemas.StatusReply>>().toBeNever();
    expectTypeOf<Unknown<Client.Progress, typeof Schemas.Progress>>().toBeNever();
    expectTypeOf<Unknown<Client.Results, typeof Schemas.ResultsReply>>().toBeNever();
    expectTypeOf<Unknown<Client.SelectedPhoto, typeof Schemas.SelectedPhoto>>().toBeNever();
    expectTypeOf<Unknown<Client.PhotoFate, typeof Schemas.PhotoFate>>().toBeNever();
    expectTypeOf<Unknown<Client.StartResponse, typeof Schemas.StartReply>>().toBeNever();
    expectTypeOf<Unknown<Client.HealthResponse, typeof Schemas.HealthReply>>().toBeNever();
    expectTypeOf<Unknown<Client.ProceedResponse, typeof Schemas.ProceedReply>>().toBeNever();
    expectTypeOf<Unknown<Client.ApiError, typeof Schemas.ErrorReply>>().toBeNever();
  });

  it('what the client sends to start a job is a body the API accepts', () => {
    expectTypeOf<Client.StartFromStorageRequest>().toExtend<Wire<typeof Schemas.StartFromStorageBody>>();
    expectTypeOf<Unknown<Client.StartFromStorageRequest, typeof Schemas.StartFromStorageBody>>().toBeNever();
    expectTypeOf<Unknown<Client.StorageFile, typeof Schemas.FileInput>>().toBeNever();
  });
});
