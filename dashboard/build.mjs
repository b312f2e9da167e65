// Bundles the dashboard into OUT_DIR (argv[2], default dist/): index.html,
// app.js (src/main.js with its npm dependencies, minified), embed_worker.js
// (the map's web worker, with umap-js) and app.css. The
// qvec build compiles these files into the server (server/dashboard_assets).
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, 'dist');
mkdirSync(out, { recursive: true });
// One minified browser bundle of `entry` (with its npm imports) as `file`.
const bundle = (entry, file) =>
  esbuild.build({
    entryPoints: [join(here, entry)],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari15'],
    outfile: join(out, file),
    legalComments: 'none',
  });
await bundle('src/main.js', 'app.js');
// The map's web worker, a bundle of its own (it imports umap-js).
await bundle('src/embed_worker.js', 'embed_worker.js');
copyFileSync(join(here, 'src/index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'src/style.css'), join(out, 'app.css'));
