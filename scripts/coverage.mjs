#!/usr/bin/env node
/**
 * The coverage figure of `npm test` (its `posttest` step), over every source file
 * under agent/. `npm run coverage [-- REPORTER...]` prints it again from the last
 * run's data (`-- text` gives the table per file; reporters as istanbul names them).
 *
 * tap records the coverage (the `coverage-map` in package.json limits it to agent/):
 * its loader reaches every child process through NODE_OPTIONS, so the daemons and
 * CLIs the tests start (test/helpers/daemon.ts) count too; each writes its coverage
 * when it exits, SIGTERM included (not after SIGKILL). Its own summary is turned off
 * (`coverage-report: none`) because, for this project, it would not tell the truth:
 * - it counts only the files some process loaded: a module no test reaches is not
 *   low, it is absent. Here every .ts file under agent/ counts, at 0 % if never
 *   loaded (c8's `all`), except files that compile to nothing (types only): they
 *   hold nothing to run;
 * - tsx compiles without `sourcesContent` in its source maps (it adds them only
 *   under NODE_V8_COVERAGE), and from such a map c8 takes an empty original: every
 *   file counted as one line. The original is read from disk instead (the file
 *   that ran).
 * Figures are c8's: a line counts as run unless it lies in a block V8 saw never run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RECORDED = resolve(ROOT, '.tap/coverage');

/** c8 as tap uses it to report (a dependency of tap's runner, not of ours). */
function loadC8() {
  const tap = createRequire(createRequire(import.meta.url).resolve('tap/package.json'));
  const runner = createRequire(tap.resolve('@tapjs/run/package.json'));
  return runner('c8');
}

/** agent/'s .ts files that compile to some code, relative to the project. */
function sourcesWithCode(dir = resolve(ROOT, 'agent')) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sourcesWithCode(path));
    else if (entry.name.endsWith('.ts') && transformSync(readFileSync(path, 'utf8'), { loader: 'ts', format: 'esm' }).code.trim() !== '') {
      found.push(relative(ROOT, path).split(sep).join('/'));
    }
  }
  return found;
}

/** A recorded process coverage, with source maps that c8 can follow back to our files. */
function withOriginals(text) {
  const cov = JSON.parse(text);
  for (const entry of Object.values(cov['source-map-cache'] ?? {})) {
    if (entry?.data?.sourcesContent?.some((s) => s == null)) delete entry.data.sourcesContent;
  }
  return JSON.stringify(cov);
}

async function main(reporters) {
  let files = [];
  try {
    files = readdirSync(RECORDED).filter((f) => f.endsWith('.json'));
  } catch {
    // no directory: same answer as an empty one
  }
  if (files.length === 0) {
    process.stdout.write('coverage: nothing recorded in .tap/coverage (tap ran with --disable-coverage?)\n');
    return 0;
  }
  const work = mkdtempSync(join(tmpdir(), 'ldm-coverage-'));
  try {
    for (const f of files) writeFileSync(join(work, f), withOriginals(readFileSync(join(RECORDED, f), 'utf8')));
    // c8 matches include patterns against paths relative to the working directory.
    process.chdir(ROOT);
    const report = loadC8().Report({
      reporter: reporters.length > 0 ? reporters : ['text-summary'],
      reportsDirectory: resolve(ROOT, '.tap/report'),
      tempDirectory: work,
      all: true,
      src: [ROOT],
      include: sourcesWithCode(),
      exclude: [],
      extension: ['.ts'],
      excludeNodeModules: true,
      skipFull: false,
    });
    process.stdout.write('coverage of every file under agent/, child processes included:\n');
    await report.run();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
