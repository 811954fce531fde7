// The probe's loads together (issue 13, "Done when"), against the real daemon: a
// read user who pipelines list-domain and never reads, 64 unauthenticated peers
// flooding stanzas before login, and 300 idle connections, all at once and kept up
// (a peer that is closed comes back). They run in a process of their own
// (helpers/probe-loads.ts). Meanwhile an honest client, on an address of its own,
// logs in and lists the domains again and again: each round must finish within 1 s
// (p99), and the agent's resident memory must stay under 512 MB. Loopback only;
// about 30 s.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_ARGS, startDaemon } from './helpers/daemon.ts';
import { LIST_DOMAIN, onlineRawPeer } from './helpers/raw.ts';

const WARM_UP_MS = 3000;
const MEASURE_MS = 15_000;
const P99_LIMIT_MS = 1000;
const RSS_LIMIT_MB = 512;
const LOADS_BIN = fileURLToPath(new URL('./helpers/probe-loads.ts', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU time (user + system) the process has used, in clock ticks (1/100 s on Linux). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

t.test('under the probe loads, an honest login and list-domain take under 1 s (p99), and the agent stays under 512 MB', async (t) => {
  const daemon = await startDaemon(t);
  const pid = daemon.proc.pid!;
  const passwordFile = join(daemon.dir, 'password');
  for (const [name, role, password] of [
    ['ops', 'write', 'ops-password-1'],
    ['viewer', 'read', 'viewer-password-2'],
  ] as const) {
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    const r = spawnSync(process.execPath, [...AGENT_ARGS, 'user', 'add', name, '--role', role, '-p', passwordFile, '--state', join(daemon.dir, 'var')], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
  }
  const honest = async () => {
    const begin = performance.now();
    const p = await onlineRawPeer(daemon.port, 'ops', 'ops-password-1', '127.0.0.2');
    try {
      p.write(LIST_DOMAIN);
      await p.until(/<status>success<\/status>[\s\S]*<\/LDM_interface>/, 10_000);
      return performance.now() - begin;
    } finally {
      p.destroy();
    }
  };
  await honest(); // the honest user has logged in from its address before, as a returning user has

  const loads = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), LOADS_BIN, String(daemon.port), process.env.LOADS ?? 'reader,flood,idle', '60'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const loadsExited = new Promise<void>((r) => loads.once('exit', () => r()));
  t.teardown(async () => {
    loads.kill('SIGTERM');
    await loadsExited;
  });
  await new Promise<void>((resolve, reject) => {
    loads.stdout.on('data', (d: Buffer) => /loads running/.test(String(d)) && resolve());
    loads.once('exit', () => reject(new Error('the load process ended before starting')));
  });

  await sleep(WARM_UP_MS);
  const times: number[] = [];
  const failures: string[] = [];
  let peakRss = rssMb(pid);
  const cpuBefore = cpuTicks(pid);
  const began = Date.now();
  while (Date.now() < began + MEASURE_MS) {
    try {
      times.push(await honest());
    } catch (err) {
      failures.push((err as Error).message.slice(-300));
      times.push(Infinity);
    }
    peakRss = Math.max(peakRss, rssMb(pid));
    await sleep(100);
  }
  const agentCpu = ((cpuTicks(pid) - cpuBefore) * 10 * 100) / (Date.now() - began); // 10 ms a tick; percent of one core
  loads.kill('SIGTERM');
  await loadsExited;

  const sorted = [...times].sort((a, b) => a - b);
  const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const summary =
    `${times.length} rounds: p50 ${pct(0.5).toFixed(0)} ms, p99 ${pct(0.99).toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms; ` +
    `peak RSS ${peakRss.toFixed(0)} MB; agent CPU ${agentCpu.toFixed(0)} % of a core`;
  t.comment(summary);
  t.ok(times.length >= 20, `enough rounds to speak of a p99 (${times.length})`);
  t.same(failures, [], 'every honest round succeeded');
  t.ok(pct(0.99) < P99_LIMIT_MS, `p99 under ${P99_LIMIT_MS} ms: ${summary}`);
  t.ok(peakRss < RSS_LIMIT_MB, `agent RSS stayed under ${RSS_LIMIT_MB} MB: ${summary}`);
  t.equal(daemon.proc.exitCode, null, 'the agent is still running');
});
