/**
 * `npm run bench` runs every benchmark listed here, in order;
 * `npm run bench -- NAME` runs one. Benchmarks never run inside `npm test`.
 *
 * Each benchmark records its figures (bench/measure.ts, `figure`) where it prints them.
 * After the run this writes bench/results.json (the figures, the machine, when and how
 * each benchmark ran), bench/results.md (the same as a Markdown table) and the README's
 * performance table between its two markers. A run of some benchmarks replaces only
 * their rows and keeps the others' from earlier runs; a benchmark that fails keeps its
 * earlier rows too, and the run ends with status 1.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { takeFigures, type FigureRecord } from './measure.ts';

interface Benchmark {
  run(): Promise<void>;
}

const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  codec: () => import('./codec.ts'),
  hypervisor: () => import('./hypervisor.ts'),
  transport: () => import('./transport.ts'),
  cli: () => import('./cli.ts'),
  migration: () => import('./migration.ts'),
};

/** The environment variables each benchmark reads (bench/README.md): a run with any of them set is not a default run. */
const SETTINGS: Record<string, RegExp> = {
  codec: /^BENCH_ROUND(S|_MS)$/,
  hypervisor: /^BENCH_ROUND(S|_MS)$/,
  transport: /^BENCH_(TRANSPORT_|SUBSCRIBERS$|FANOUT_)/,
  cli: /^BENCH_CLI_/,
  migration: /^LDM_BENCH_/,
};

/** These start bin/*.js, which run the bundles in dist/: built first, so never older than the sources. */
const USES_BINS = new Set(['transport', 'cli']);

const RESULTS_JSON = fileURLToPath(new URL('./results.json', import.meta.url));
const RESULTS_MD = fileURLToPath(new URL('./results.md', import.meta.url));
const README = fileURLToPath(new URL('../README.md', import.meta.url));
const BEGIN = '<!-- bench:results begin -->';
const END = '<!-- bench:results end -->';

interface Machine {
  cpus: number;
  model: string;
  /** Bytes. */
  memory: number;
  node: string;
  os: string;
}

/** When and how one benchmark last ran: its rows may be older than the file. */
interface RunRecord {
  date: string;
  seconds: number;
  /** 1-minute load average at its start and at its end: the machine is shared, read the ratios. */
  load: [number, number];
  /** The variables of SETTINGS it ran with (sizes, rounds); empty for a default run. */
  settings: Record<string, string>;
}

interface Results {
  date: string;
  command: string;
  machine: Machine;
  runs: Record<string, RunRecord>;
  figures: FigureRecord[];
}

function buildBundles(): void {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed (status ${r.status})`);
}

function machine(): Machine {
  const list = cpus();
  return { cpus: list.length, model: list[0]?.model.trim() ?? 'unknown', memory: totalmem(), node: process.version, os: `${type()} ${release()} ${arch()}` };
}

const settings = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env)
      .filter((e): e is [string, string] => (SETTINGS[name]?.test(e[0]) ?? false) && e[1] !== undefined && e[1] !== '')
      .sort(([a], [b]) => a.localeCompare(b)),
  );

/** The earlier results, if there are any that can be read. */
function previous(): Results | undefined {
  if (!existsSync(RESULTS_JSON)) return undefined;
  try {
    const r = JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as Results;
    if (Array.isArray(r.figures) && typeof r.runs === 'object' && r.runs !== null) return r;
  } catch {}
  console.warn(`bench: ${RESULTS_JSON} cannot be read; it is written anew with this run's figures only`);
  return undefined;
}

// ── Markdown ─────────────────────────────────────────────────────────────────

/** About three significant digits, thousands grouped. */
function num(x: number): string {
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 10) return x.toFixed(1);
  if (a >= 1 || a === 0) return x.toFixed(2);
  return x.toPrecision(2);
}
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function markdown(r: Results): string {
  const m = r.machine;
  const runs = Object.entries(r.runs).map(([name, run]) => {
    const set = Object.entries(run.settings).map(([k, v]) => `${k}=${v}`);
    return `${name} ${run.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(run.seconds)} s, load ${run.load[0].toFixed(1)} -> ${run.load[1].toFixed(1)}${set.length ? `, ${set.join(' ')}` : ''}`;
  });
  const lines = [
    `Written by \`${r.command}\` on ${r.date.slice(0, 10)}: ${m.cpus} CPUs (${m.model}), ${gib(m.memory)}, Node ${m.node}, ${m.os}. ` +
      `Each benchmark's last run (1-minute load average at its start and end, on ${m.cpus} CPUs): ${runs.join('; ')}. ` +
      'Ratio = value / baseline value: for times above 1 is slower than the baseline, for rates below 1 is.',
    '',
    '| figure | value | baseline (same run) | ratio | goal | met |',
    '|---|---|---|---|---|---|',
  ];
  for (const f of r.figures) {
    const value = f.value === null ? '?' : `${num(f.value)} ${f.unit}`;
    const baseline = f.baseline === null ? '-' : `${f.baseline}: ${f.baselineValue === null ? '?' : `${num(f.baselineValue)} ${f.unit}`}`;
    const ratio = f.ratio === null ? '-' : `${num(f.ratio)}x`;
    const met = f.met === null ? (f.goal === null ? '-' : '?') : f.met ? 'yes' : '**no**';
    lines.push(`| ${[f.figure, value, baseline, ratio, f.goal ?? '-', met].map(cell).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

// ── writing ──────────────────────────────────────────────────────────────────

/** Written beside, then renamed: a reader never sees half a file. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** The README's performance table becomes results.md; nothing else in the README changes. */
function updateReadme(md: string): void {
  const text = readFileSync(README, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) {
    console.warn(`bench: README.md has no "${BEGIN}" ... "${END}" region: its table is not updated`);
    return;
  }
  const updated = `${text.slice(0, begin + BEGIN.length)}\n${md}${text.slice(end)}`;
  if (updated !== text) writeAtomic(README, updated);
}

function write(ran: Map<string, { figures: FigureRecord[]; run: RunRecord }>, command: string): Results {
  const before = previous();
  const now = machine();
  const figures: FigureRecord[] = [];
  const runs: Record<string, RunRecord> = {};
  const kept: string[] = [];
  for (const name of Object.keys(BENCHMARKS)) {
    const fresh = ran.get(name);
    if (fresh) {
      figures.push(...fresh.figures);
      runs[name] = fresh.run;
    } else if (before?.runs[name]) {
      figures.push(...before.figures.filter((f) => f.benchmark === name));
      runs[name] = before.runs[name]!;
      kept.push(name);
    }
  }
  const m = before?.machine;
  if (kept.length > 0 && m && (m.model !== now.model || m.cpus !== now.cpus || m.node !== now.node)) {
    console.warn(`bench: the rows of ${kept.join(', ')} were measured on ${m.cpus} x ${m.model}, Node ${m.node}, not on this machine: run them again here`);
  }
  const results: Results = { date: new Date().toISOString(), command, machine: now, runs, figures };
  writeAtomic(RESULTS_JSON, JSON.stringify(results, null, 2) + '\n');
  const md = markdown(results);
  writeAtomic(RESULTS_MD, md);
  updateReadme(md);
  return results;
}

async function main(args: string[]): Promise<number> {
  const usage = `usage: npm run bench [-- NAME...]   (NAME: ${Object.keys(BENCHMARKS).join(', ')})`;
  if (args.includes('-h') || args.includes('--help')) {
    console.log(usage);
    return 0;
  }
  const unknown = args.filter((a) => !Object.hasOwn(BENCHMARKS, a));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}\n${usage}`);
    return 2;
  }
  const names = args.length > 0 ? args : Object.keys(BENCHMARKS);
  if (names.some((n) => USES_BINS.has(n))) buildBundles();
  const ran = new Map<string, { figures: FigureRecord[]; run: RunRecord }>();
  const failed: string[] = [];
  for (const name of names) {
    console.log(`# ${name}`);
    const date = new Date().toISOString();
    const load = loadavg()[0]!;
    const started = performance.now();
    try {
      const bench = await BENCHMARKS[name]!();
      await bench.run();
      const figures = takeFigures().map((f) => ({ ...f, benchmark: name }));
      if (figures.length === 0) throw new Error('it recorded no figure');
      ran.set(name, { figures, run: { date, seconds: (performance.now() - started) / 1000, load: [load, loadavg()[0]!], settings: settings(name) } });
    } catch (err) {
      takeFigures();
      failed.push(name);
      console.error(`bench: ${name} failed, its earlier rows are kept: ${(err as Error).stack ?? err}`);
    }
  }
  if (ran.size > 0) {
    const results = write(ran, `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`);
    const missed = results.figures.filter((f) => f.met === false).length;
    console.log(`bench: ${results.figures.length} figures in bench/results.json and bench/results.md (README table updated); goals not met: ${missed}`);
  }
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
