/** Request bodies: JSON, where an empty body is no body, and multipart uploads within the upload limits. */
import multipart from '@fastify/multipart';
import fp from 'fastify-plugin';

export interface BodiesOptions {
  /** Largest uploaded file, bytes. */
  maxUploadBytes: number;
}

export const bodies = fp<BodiesOptions>(async (app, opts) => {
  // Clients send DELETE and proceed with a JSON content type and no body: that is "no body", not a 400.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, undefined);
    return json(request, body as string, done);
  });
  await app.register(multipart, {
    limits: {
      fileSize: opts.maxUploadBytes,
      files: 2_001,
      fields: 20,
      fieldSize: 10_000,
      parts: 2_100,
      headerPairs: 100,
    },
  });
});
