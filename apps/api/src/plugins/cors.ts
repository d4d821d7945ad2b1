/** Cross-origin requests: the origins `../cors.ts` allows, the methods and headers the webapp uses. */
import cors from '@fastify/cors';
import fp from 'fastify-plugin';
import { allowedOrigins } from '../cors.js';

export interface CorsOptions {
  /** CORS_ORIGINS. */
  origins: readonly string[];
  /** Local mode (no token verification) also allows loopback origins. */
  localMode: boolean;
}

export const crossOrigin = fp<CorsOptions>(async (app, opts) => {
  await app.register(cors, {
    origin: allowedOrigins(opts.origins, opts.localMode),
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposedHeaders: ['Content-Disposition', 'Retry-After'],
    maxAge: 600,
  });
});
