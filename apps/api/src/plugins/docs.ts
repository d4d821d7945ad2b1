/** The OpenAPI document of every route, built from their schemas, and its UI at /docs. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';

export const docs = fp<{ version: string }>(async (app, opts) => {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Photo triage API',
        version: opts.version,
        description: 'Picks the best photos of a set with a vision model, in two passes over labelled grids.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
});
