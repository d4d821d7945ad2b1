// Part of the package's build: tsc compiles src/ to dist/ but copies nothing else, and the store reads its
// Lua scripts from dist/lua at run time (src/scripts.ts). Replaces dist/lua with src/lua.
import { cpSync, rmSync } from 'node:fs';

const from = new URL('./src/lua/', import.meta.url);
const to = new URL('./dist/lua/', import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
