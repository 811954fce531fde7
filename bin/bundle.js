/**
 * What both executables do: run their bundle, dist/NAME.js, which `npm install`
 * builds (scripts/build.mjs, the `prepare` script).
 *
 * There is no fallback to the TypeScript sources: tsx is a development dependency,
 * and a bin that quietly ran the sources would start several times slower and hide a
 * build that failed. In a checkout (agent/ beside dist/) a bundle older than a source
 * is reported, not rebuilt: running code older than the sources in front of you must
 * not go unnoticed. These texts live here, not in agent/messages.ts: that file is
 * TypeScript, which is exactly what a bin without its bundle cannot load.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../', import.meta.url);

/** Newest modification time (ms) of the .ts files under `dir`. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export async function runBundle(name) {
  const bundle = new URL(`dist/${name}.js`, ROOT);
  if (!existsSync(bundle)) {
    process.stderr.write(
      `${name}: ${fileURLToPath(bundle)} is missing: run \`npm install\` (its prepare step builds dist/) or \`npm run build\`\n`,
    );
    process.exitCode = 1;
    return;
  }
  const sources = fileURLToPath(new URL('agent', ROOT));
  if (existsSync(sources) && newestSource(sources) > statSync(bundle).mtimeMs) {
    process.stderr.write(`${name}: warning: dist/ is older than the sources in agent/: run \`npm run build\`\n`);
  }
  await import(bundle.href);
}
