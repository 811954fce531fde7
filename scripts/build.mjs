#!/usr/bin/env node
/**
 * Bundles the two executables with esbuild into dist/: `npm install` runs this (the
 * `prepare` script; npm also runs `prepare` before `npm pack` and when installing from
 * git). The bins then load one JavaScript file instead of compiling the TypeScript
 * sources through tsx on every start (bench/cli.ts measures both).
 *
 *   node scripts/build.mjs [OUTDIR]      OUTDIR defaults to dist/ at the top of the project
 *
 * - `import.meta.url` in an agent/ source becomes that source file's own URL, computed
 *   from where the bundle lies, so paths derived from it (the schemas/ folder) resolve
 *   as they do from the sources, whatever OUTDIR is (the sources use no
 *   `import.meta.dirname` or `import.meta.filename`, which are left as they are).
 * - `libxml2-wasm` stays outside the bundle: `validate` imports it on first use and it
 *   loads its .wasm file from its own folder. `@node-rs/xxhash` (the migration digest)
 *   too: it loads a native addon for the platform. Dynamic imports stay lazy: with code
 *   splitting they become chunks, loaded on first use.
 * - node-forge and saxes are bundled: measured, that starts no slower than leaving
 *   them to Node's resolver, and a bundle depends on fewer installed files.
 * - No minifying, no source maps: stack traces stay readable, and minifying gained
 *   nothing measurable at start-up.
 */
import { readFile } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const AGENT_DIR = resolve(ROOT, 'agent') + sep;

export const ENTRY_POINTS = {
  'ldm-agent': resolve(ROOT, 'agent/cli/ldm-agent.ts'),
  ldm: resolve(ROOT, 'agent/cli/ldm.ts'),
};

/** Packages left to Node's resolution at run time (@node-rs/xxhash loads a native .node file). */
const EXTERNAL = ['libxml2-wasm', '@node-rs/xxhash'];

/** Each agent/ source keeps its own location in `import.meta.url`, not the bundle's. */
function sourceLocation(outdir) {
  return {
    name: 'source-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (!args.path.startsWith(AGENT_DIR)) return undefined;
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const path = relative(outdir, args.path).split(sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(path)}, import.meta.url).href`), loader: 'ts' };
      });
    },
  };
}

/** Builds both bundles into `outdir` (absolute, or relative to the project); returns it. */
export async function buildBins(outdir = 'dist') {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new Error('esbuild is not installed (a development dependency): run `npm install` without --omit=dev, or install a packed release (`npm pack`), which carries dist/');
  }
  const out = resolve(ROOT, outdir);
  await esbuild.build({
    entryPoints: ENTRY_POINTS,
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // Bundled CommonJS packages (node-forge, saxes) call require(); an ES module has none.
    banner: { js: "import { createRequire as __ldmCreateRequire } from 'node:module'; const require = __ldmCreateRequire(import.meta.url);" },
    plugins: [sourceLocation(out)],
    logLevel: 'warning',
  });
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const out = await buildBins(process.argv[2]);
    process.stdout.write(`built ${relative(process.cwd(), out) || '.'}/: ${Object.keys(ENTRY_POINTS).map((n) => `${n}.js`).join(', ')}\n`);
  } catch (err) {
    process.stderr.write(`build: ${err.message}\n`);
    process.exitCode = 1;
  }
}
