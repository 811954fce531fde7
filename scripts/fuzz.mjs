#!/usr/bin/env node
// npm run fuzz: every fuzz file (test/fuzz*.test.ts) through tap at FUZZ_SCALE (default 3,
// which makes the total over 100,000 cases; `npm test` runs them at scale 1), then the cases
// run per target and overall, read from tap's output: each file's closing test states its
// total (test/fuzz.test.ts, the LDM codec: "all fuzz properties: N cases in total"; the
// wire files: "N cases in total (target n, target n)", helpers/hostile-fuzz.ts).
//
//   npm run fuzz                      # scale 3
//   FUZZ_SCALE=10 npm run fuzz        # longer
//   FUZZ_SEED=123 npm run fuzz        # other seeds (each file's properties offset from it)
//
// Exit status: tap's, or 1 when fewer than 100,000 cases ran.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scale = process.env.FUZZ_SCALE ?? '3';
const MIN_TOTAL = 100_000;
const files = readdirSync(join(root, 'test'))
  .filter((f) => /^fuzz.*\.test\.ts$/.test(f))
  .sort()
  .map((f) => `test/${f}`);

const tap = join(root, 'node_modules', '.bin', 'tap');
// No per-file timeout: a larger scale runs longer (each file still bounds itself, times the scale).
const args = ['--disable-coverage', '--reporter=tap', '--timeout=0', ...files];
process.stdout.write(`fuzzing ${files.join(', ')} at FUZZ_SCALE=${scale}\n`);
const started = Date.now();
const child = spawn(tap, args, { cwd: root, env: { ...process.env, FUZZ_SCALE: scale }, stdio: ['ignore', 'pipe', 'inherit'] });

const perTarget = new Map();
const failures = [];
let file = '';
let buffered = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  buffered += chunk;
  const lines = buffered.split('\n');
  buffered = lines.pop() ?? '';
  for (const line of lines) read(line);
});

const number = (s) => Number(s.replace(/,/g, ''));
function read(line) {
  const top = /^# Subtest: (test\/\S+\.test\.ts)/.exec(line);
  if (top) file = top[1];
  const codec = /^\s*ok \d+ - .*all fuzz properties: ([\d,]+) cases in total/.exec(line);
  if (codec) add('ldm-codec', number(codec[1]));
  const wire = /^\s*ok \d+ - ([\d,]+) cases in total \(([^)]*)\)/.exec(line);
  if (wire) {
    for (const part of wire[2].split(', ')) {
      const m = /^(\S+) ([\d,]+)$/.exec(part);
      if (m) add(m[1], number(m[2]));
    }
  }
  if (/^\s*not ok \d+ - /.test(line)) failures.push(`${file}: ${line.trim()}`);
  // Each file's result and each of its properties', as they come.
  if (/^ {0,4}(not )?ok \d+ - /.test(line)) process.stdout.write(`${line}\n`);
}
function add(target, n) {
  perTarget.set(target, (perTarget.get(target) ?? 0) + n);
}

child.on('close', (code) => {
  if (buffered) read(buffered);
  const total = [...perTarget.values()].reduce((a, b) => a + b, 0);
  const width = Math.max(...[...perTarget.keys(), 'total'].map((k) => k.length));
  const row = (k, n) => `  ${k.padEnd(width)}  ${n.toLocaleString('en-US').padStart(9)}`;
  const out = [`\nfuzz cases at FUZZ_SCALE=${scale} (${((Date.now() - started) / 1000).toFixed(0)} s):`];
  for (const [k, n] of [...perTarget].sort()) out.push(row(k, n));
  out.push(row('total', total));
  if (failures.length > 0) out.push(`\nfailed (${failures.length}):`, ...failures.slice(0, 20).map((f) => `  ${f}`));
  process.stdout.write(out.join('\n') + '\n');
  if (total < MIN_TOTAL) process.stdout.write(`fewer than ${MIN_TOTAL.toLocaleString('en-US')} cases ran\n`);
  process.exit(code !== 0 ? code ?? 1 : total < MIN_TOTAL ? 1 : 0);
});
