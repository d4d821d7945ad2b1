# Photo triage: one multi-stage Dockerfile for the whole monorepo, with one target per process.
#
#   docker build --target api    -t photo-triage-api .
#   docker build --target worker -t photo-triage-worker .
#   (docker-compose.yml builds both; see docs/deploy.md)
#
# One file rather than one per app: the workspaces share one lockfile, one `npm ci` and one Turborepo
# build, so both targets reuse the same cached build stage and run the exact same compiled packages; they
# differ only in their command and health check.
#
# Nothing secret is baked in: settings (REDIS_URL, keys, secrets) come from the environment at run time.
#
# No fonts are installed, and none are needed: the grids' labels (A1, A2, … row letters, column numbers)
# are drawn from a bitmap font built into packages/images, not rendered as SVG text, so sharp never asks
# fontconfig for a font.

ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------------------------------------------
# build: install everything, compile every workspace, then drop the dev dependencies, the sources and the
# test-only modules (the local Storage and Messages API servers, the image test fixtures).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Manifests first, so the `npm ci` layer stays cached until a package.json or the lockfile changes.
# (apps/cli/bin is here too: npm links the `triage` command only when its file exists.)
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/images/package.json packages/images/
COPY packages/storage/package.json packages/storage/
COPY packages/vision/package.json packages/vision/
COPY packages/db/package.json packages/db/
COPY packages/queue/package.json packages/queue/
COPY packages/client/package.json packages/client/
COPY apps/worker/package.json apps/worker/
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/cli/bin apps/cli/bin
COPY apps/bench/package.json apps/bench/
# --ignore-scripts: no dependency needs an install script (sharp ships prebuilt binaries, and so does
# msgpackr-extract); npm 11, which the project uses, would not run them either.
RUN npm ci --ignore-scripts

COPY . .
RUN npx turbo run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf .turbo packages/*/src apps/*/src apps/*/test packages/*/.turbo apps/*/.turbo \
           packages/*/dist/.tsbuildinfo apps/*/dist/.tsbuildinfo \
           packages/*/dist/testing packages/*/dist/test-fixtures.* \
 && find packages apps -path '*/dist/*' \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.ts.map' \) -delete

# ---------------------------------------------------------------------------------------------------
# runtime: Node, tini, the compiled workspaces and their production dependencies; runs as `node`.
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to Node (which drains: the worker hands back or finishes its grid within
# SHUTDOWN_DEADLINE_MS) and reaps zombies. `docker run --init` / compose `init: true` would do the same.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# MALLOC_ARENA_MAX=2: fewer glibc malloc arenas, less fragmentation from libvips' threads; it must be set
# before Node starts, hence here rather than in code.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=8000 \
    STORAGE_DIR=/data/storage

WORKDIR /app
# The local storage driver's folder: owned by `node` so that a fresh named volume mounted here is too.
RUN mkdir -p /data/storage && chown node:node /data/storage
# The code belongs to root and is read-only for the process.
COPY --from=build /app /app
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---------------------------------------------------------------------------------------------------
# worker: one grid at a time, one image pipeline; healthy while it writes its heartbeat to Redis.
FROM runtime AS worker
# The worker's memory settings, as every other start of it uses them (packages/queue/src/runtime.ts, measured
# in docs/benchmarks.md): large allocations mapped and returned to the system on free, a small V8 young
# generation, WebAssembly (the HEIC decoder) on the baseline compiler only.
ENV MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs", "worker"]
CMD ["node", "--max-semi-space-size=1", "--liftoff-only", "--expose-gc", "apps/worker/dist/main.js"]

# ---------------------------------------------------------------------------------------------------
# api: the HTTP API (Fastify) on $PORT; healthy while /readyz answers (the process serves, Redis answers).
# The default target.
FROM runtime AS api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs", "api"]
# A 2 MB V8 young generation: streamed uploads and ZIPs peak ~50 MB lower (docs/benchmarks.md).
CMD ["node", "--max-semi-space-size=2", "apps/api/dist/server.js"]
