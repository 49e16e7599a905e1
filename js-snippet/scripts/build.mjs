// Builds dist/cemreplay.min.js (an IIFE exposing window.cemreplay).
// `node scripts/build.mjs --check` fails when the committed file differs from a fresh build.
import { build } from 'esbuild';
import { minify } from 'terser';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = root + 'dist/cemreplay.min.js';
// The schema constants (K.CLICK, F.LINK, ...) are inlined as numbers: the values still come
// from src/schema.gen.js, but the bundle does not carry the name tables.
const schema = await import('../src/schema.gen.js');
const inline = {
  name: 'inline-schema',
  setup(b) {
    b.onLoad({ filter: /src[\\/](main|util)\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8').replace(
        /\b(K|F|DEVICE|NAV|ERR_SRC)\.([A-Z_]+)\b/g,
        (m, ns, k) => {
          const v = schema[ns][k];
          if (v === undefined) throw new Error(`${m}: no such constant in schema.gen.js`);
          return String(v);
        },
      );
      return { contents: src, loader: 'js' };
    });
  },
};
const common = {
  bundle: true,
  format: 'iife',
  minify: true,
  target: 'es2020',
  charset: 'utf8',
  legalComments: 'none',
  write: false,
};
const r = await build({ ...common, plugins: [inline], entryPoints: [root + 'src/main.js'] });
// terser after esbuild: its compressor (two passes) and its name mangling take about 150
// bytes more off the gzipped bundle than esbuild's minifier alone.
const shrink = async (text) =>
  (
    await minify(text, {
      ecma: 2020,
      compress: { passes: 2 },
      format: { ascii_only: false },
    })
  ).code + '\n';
const code = await shrink(r.outputFiles[0].text);

/** Write `code` to dist/`name` (or, with --check, fail when the committed file differs). */
function emit(name, file, code) {
  if (process.argv.includes('--check')) {
    let old = '';
    try {
      old = readFileSync(file, 'utf8');
    } catch {}
    if (old !== code) {
      console.error(`dist/${name} is not a fresh build: run \`npm run build\` and commit it`);
      process.exit(1);
    }
  } else writeFileSync(file, code);
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`dist/${name}: ${code.length} bytes, ${gz} bytes min+gzip`);
}
emit('cemreplay.min.js', out, code);

// The optional answer-channel add-on (src/help-entry.js), a separate file outside the budget.
const helpOut = root + 'dist/cemreplay-help.min.js';
const rh = await build({ ...common, entryPoints: [root + 'src/help-entry.js'] });
emit('cemreplay-help.min.js', helpOut, rh.outputFiles[0].text);
