#!/usr/bin/env node
// Build a JavaScript guest component with the componentize-js library API
// (`jco componentize` has trouble with paths here).
//
// usage: node scripts/componentize.mjs <app.js> <wit-dir> <world> <out.wasm>
//
// ES modules resolve packages relative to the script itself, so
// scripts/build-guests copies this file into build/js-tools/ (next to the
// node_modules installed from scripts/js-tools/package-lock.json) and runs it there.
import { writeFile, rename } from 'node:fs/promises';
import { resolve } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

const [sourcePath, witPath, worldName, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: componentize.mjs <app.js> <wit-dir> <world> <out.wasm>');
  process.exit(2);
}

const { component } = await componentize({
  sourcePath: resolve(sourcePath),
  witPath: resolve(witPath),
  worldName,
  // The Orb host provides WASI cli/io/clocks/random but no wasi:http.
  disableFeatures: (process.env.ORB_JS_DISABLE_FEATURES ?? 'http,fetch-event')
    .split(',').map((s) => s.trim()).filter(Boolean),
});

const tmp = `${outPath}.tmp`;
await writeFile(tmp, component);
await rename(tmp, outPath);
