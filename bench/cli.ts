/**
 * Start-up of the executables: how long `ldm-agent --help`, `ldm --help` and `ldm list`
 * (against an agent of its own, over the local socket) take, as
 * installed (bin/*.js running the bundles in dist/, built by bench/run.ts just
 * before), beside `node -e 0` measured in the same rounds: the least any Node
 * program costs to start. For reference, the way the bins ran before the bundles:
 * the TypeScript sources through tsx. And `ldm-agent validate` of one example, the
 * one command that loads libxml2-wasm and compiles a schema, on first use.
 *
 * Each round runs every command once, in turn (so a busy moment of the machine hits
 * them alike); the median round is reported, with the ratio to `node -e 0`.
 *
 * Environment: BENCH_CLI_ROUNDS (default 20).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { figure, median } from './measure.ts';

const ROUNDS = Number(process.env.BENCH_CLI_ROUNDS ?? 20);
const WARMUP_ROUNDS = 2;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = 'xml-examples/requests/list-domain.xml';

interface Command {
  figure: string;
  args: string[];
  /** What its output must show, so that a failing command is never timed as a fast one. */
  check: (out: string, status: number | null) => boolean;
}

const BASELINE: Command = { figure: 'node -e 0', args: ['-e', '0'], check: (_, status) => status === 0 };

const COMMANDS: Command[] = [
  BASELINE,
  { figure: 'ldm-agent --help (bundle)', args: ['bin/ldm-agent.js', '--help'], check: (out, status) => status === 0 && out.startsWith('usage: ldm-agent') },
  { figure: 'ldm --help (bundle)', args: ['bin/ldm.js', '--help'], check: (out, status) => status === 0 && out.startsWith('usage: ldm') },
  // What scripts run in loops (issue 9: at most 3x node -e 0): a local agent's table over its Unix socket.
  { figure: 'ldm list against a local agent (bundle)', args: ['bin/ldm.js', 'list'], check: (out, status) => status === 0 && /^NAME +STATE/.test(out) && /^primary /m.test(out) },
  {
    figure: 'ldm-agent --help (sources through tsx, as before the bundles)',
    args: ['--import', 'tsx', 'agent/cli/ldm-agent.ts', '--help'],
    check: (out, status) => status === 0 && out.startsWith('usage: ldm-agent'),
  },
  { figure: `ldm-agent validate ${EXAMPLE} (bundle)`, args: ['bin/ldm-agent.js', 'validate', EXAMPLE], check: (out, status) => status === 0 && out.includes(': valid') },
];

/** Our children run plain: no loader a parent may have put in NODE_OPTIONS; `ldm` finds the bench's agent by its state directory. */
const ENV: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };

/** An agent (the bundle) on a fresh state directory, for `ldm list`; resolves once it listens. */
async function startLocalAgent(): Promise<{ stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-bench-cli-'));
  const proc = spawn(process.execPath, ['bin/ldm-agent.js', '--listen', '127.0.0.1:0', '--http', 'off', '--discovery', 'off', '--state', join(dir, 'var'), '--certs', join(dir, 'certs')], { cwd: ROOT, env: ENV });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ldmd.sock')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`the agent exited (${code}) before listening: ${out}`)));
  });
  ENV['LDM_AGENT_STATE'] = join(dir, 'var');
  return {
    stop: async () => {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runOnce(c: Command): number {
  const start = performance.now();
  const r = spawnSync(process.execPath, c.args, { cwd: ROOT, env: ENV, encoding: 'utf8' });
  const ms = performance.now() - start;
  if (!c.check(r.stdout + r.stderr, r.status)) throw new Error(`${c.figure}: unexpected result (status ${r.status}): ${r.stdout}${r.stderr}`);
  return ms;
}

export async function run(): Promise<void> {
  const started = performance.now();
  const agent = await startLocalAgent();
  try {
    measure(started);
  } finally {
    await agent.stop();
  }
}

function measure(started: number): void {
  const load = loadavg()[0]!;
  console.log(`cli: node ${process.version}, ${ROUNDS} rounds (after ${WARMUP_ROUNDS} untimed), each command once per round, median shown; ratio = time / time of node -e 0`);
  for (let k = 0; k < WARMUP_ROUNDS; k++) for (const c of COMMANDS) runOnce(c);
  const times: number[][] = COMMANDS.map(() => []);
  for (let k = 0; k < ROUNDS; k++) COMMANDS.forEach((c, i) => times[i]!.push(runOnce(c)));
  const medians = times.map(median);
  const base = medians[0]!;
  const rows = COMMANDS.map((c, i) => ({ figure: c.figure, ms: medians[i]!, min: Math.min(...times[i]!), ratio: medians[i]! / base }));
  const width = Math.max(...rows.map((r) => r.figure.length));
  for (const r of rows) {
    console.log(`  ${r.figure.padEnd(width)}  ${r.ms.toFixed(1).padStart(7)} ms (min ${r.min.toFixed(1)})  ${r.ratio.toFixed(2)}x`);
  }
  const help = rows[1]!;
  console.log(`ldm-agent --help takes ${help.ratio.toFixed(2)}x the time of node -e 0 (target: at most 3x): ${help.ratio <= 3 ? 'met' : 'NOT met'}`);
  const list = rows[3]!;
  console.log(`ldm list takes ${list.ratio.toFixed(2)}x the time of node -e 0 (target: at most 3x): ${list.ratio <= 3 ? 'met' : 'NOT met'}`);
  if (load > cpus().length) {
    console.log(`note: load average ${load.toFixed(1)} on ${cpus().length} cores when the benchmark began: absolute times are inflated, read the ratios`);
  }
  console.log('');
  console.log('Markdown (figure | value | baseline | ratio):');
  console.log('');
  for (const r of rows.slice(1)) {
    console.log(`| start-up, ${r.figure} | ${r.ms.toFixed(0)} ms | node -e 0: ${base.toFixed(0)} ms | ${r.ratio.toFixed(2)}x |`);
    // Issue 12: ldm-agent --help within 3x node -e 0; issue 9: ldm list within 3x.
    const goal = r === help || r === list ? '<= 3x' : undefined;
    figure({ figure: `start-up, ${r.figure}`, value: r.ms, unit: 'ms', baseline: 'node -e 0', baselineValue: base, goal });
  }
  console.log('');
  console.log(`cli: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
