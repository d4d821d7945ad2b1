/**
 * The local storage driver's signed URLs point here; the signature is the authorisation (no token). Other
 * drivers sign their own URLs, and this route is not registered for them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { contentTypeOf, InvalidPathError, ObjectNotFoundError, type LocalStorage } from '@triage/storage';
import { HttpError } from '../errors.js';
import { ErrorReply } from '../schemas.js';

export const STORAGE_ROUTE = '/storage';

function validSignature(
  local: LocalStorage,
  bucket: string,
  path: string,
  expires: number,
  signature: string,
): boolean {
  try {
    return local.verifySignedUrl(bucket, path, expires, signature);
  } catch {
    return false;
  }
}

export const storageRoute: FastifyPluginAsyncTypebox<{ local: LocalStorage }> = async (app, { local }) => {
  app.get(
    `${STORAGE_ROUTE}/:bucket/*`,
    {
      schema: {
        tags: ['operations'],
        summary: 'An object of the local storage driver, by a signed URL',
        params: Type.Object({ bucket: Type.String(), '*': Type.String() }),
        querystring: Type.Object({ expires: Type.Integer(), signature: Type.String({ maxLength: 200 }) }),
        response: { 403: ErrorReply, 404: ErrorReply },
      },
    },
    async (request, reply) => {
      const { bucket, '*': path } = request.params;
      const { expires, signature } = request.query;
      if (!validSignature(local, bucket, path, expires, signature))
        throw new HttpError(403, 'Invalid or expired signature');
      try {
        const stream = await local.readStream(bucket, path);
        return reply
          .type(contentTypeOf(path))
          .header('cache-control', 'private, max-age=3600')
          .send(stream as never);
      } catch (err) {
        if (err instanceof ObjectNotFoundError || err instanceof InvalidPathError)
          throw new HttpError(404, 'Object not found');
        throw err;
      }
    },
  );
};
