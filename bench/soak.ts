/**
 * Soak (`npm run soak`, never part of `npm test`): a busy guest migrated live back and
 * forth between two real agents (child processes on loopback, bench/agents.ts) N times
 * (100 unless `--migrations N`), every migration checked, the agents' RSS and open file
 * descriptors sampled every 10 migrations.
 *
 * The guest: 1G of memory, a working set (`--working-set`, 128M) of random pages
 * rewritten at `--dirty-rate` (32M bytes/s), so that pre-copy needs more than one pass.
 *
 * After each migration, within 10 s of the answer:
 *   - the requester was answered with success and both agents' list-migrations rows of
 *     it (the same id) say `completed`;
 *   - the domain is on exactly one agent: gone from the source, active and unmarked
 *     (`-n----`) on the target;
 *   - digest intact, as test/migration-live.test.ts checks it: the source's digest (its
 *     running digest of the guest's memory at the pause) equals the target's (the
 *     running digest of the memory it received);
 *   - a downtime was recorded (list-migrations on the source, > 0 ms).
 * The first failed check stops the soak: the reason, the source's record and both
 * agents' logs are printed, and the exit status is 1.
 *
 * Flat (our definition): warm-up is the first half of the migrations (`--warm-up N`, a
 * multiple of 10; 50 of 100); the sample taken after the last whole ten (the guest is
 * then on the first agent again, as after the warm-up) is within +5 % RSS and +2 open
 * descriptors of the sample after the warm-up, for each agent: the second half may not
 * grow. With fewer than warm-up + 10 migrations flatness is not judged. Why half: the
 * heaps and allocator arenas reach their working size after 10 to 30 migrations, sooner
 * or later with the machine's speed (a quiet run: +13 % from 20 to 30, then +2.6 % from
 * 30 to 100; a quiet 300-migration run: -0.2 % and -0.1 % from 150 to 300).
 * Samples are taken 1 s after the migration's checks, so that the source's scrub and
 * closing sockets are over.
 *
 * The figures per 10 migrations go to bench/soak-results.json (or `--out FILE`).
 *
 *   npm run soak [-- --migrations N] [--warm-up N] [--working-set SIZE] [--dirty-rate SIZE] [--out FILE]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, hostname, loadavg, platform, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatSize, parseSize } from '../agent/model/sizes.ts';
import { type BenchAgent, messagesOf, migrateXml, startAgents, succeeded, waitFor, type Props } from './agents.ts';
import { median } from './measure.ts';

const MiB = 2 ** 20;
const DOMAIN = 'soak';
/** Migrations per sample. */
const EVERY = 10;
/** The flatness bound: growth of RSS (fraction) and of open descriptors after warm-up. */
const RSS_GROWTH = 0.05;
const FD_GROWTH = 2;
/** How long after a migration's answer its records and listings may take to settle, and the pause before a sample. */
const SETTLE_MS = 10_000;
const SAMPLE_DELAY_MS = 1000;

interface Settings {
  migrations: number;
  /** Migrations before the first sample flatness is judged against (a multiple of EVERY). */
  warmUp: number;
  workingSet: number;
  dirtyRate: number;
  out: string;
}

const USAGE = 'usage: npm run soak [-- --migrations N] [--warm-up N] [--working-set SIZE] [--dirty-rate SIZE] [--out FILE]';

function parseArgs(args: string[]): Settings {
  const s: Settings = {
    migrations: 100,
    warmUp: 0, // half the migrations unless given (below)
    workingSet: 128 * MiB,
    dirtyRate: 32 * MiB,
    out: fileURLToPath(new URL('./soak-results.json', import.meta.url)),
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[++i];
    if (value === undefined) throw new UsageError(`${flag}: a value is missing`);
    if (flag === '--migrations') {
      if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--migrations ${value}: expected a whole number of at least 1`);
      s.migrations = Number(value);
    } else if (flag === '--warm-up') {
      if (!/^\d+$/.test(value) || Number(value) < EVERY || Number(value) % EVERY !== 0) throw new UsageError(`--warm-up ${value}: expected a multiple of ${EVERY}`);
      s.warmUp = Number(value);
    } else if (flag === '--working-set' || flag === '--dirty-rate') {
      const bytes = parseSize(value);
      if (bytes === null || !(bytes > 0)) throw new UsageError(`${flag} ${value}: expected a size such as 64M`);
      if (flag === '--working-set') s.workingSet = bytes;
      else s.dirtyRate = bytes;
    } else if (flag === '--out') s.out = value;
    else throw new UsageError(`unknown option ${flag}`);
  }
  if (s.warmUp === 0) s.warmUp = Math.max(EVERY, Math.floor(s.migrations / 2 / EVERY) * EVERY);
  return s;
}

class UsageError extends Error {}

// ── the agents' processes ────────────────────────────────────────────────────

interface ProcessSample {
  rssMB: number;
  fds: number;
}

/** VmRSS (/proc/PID/status) in MB (10^6 bytes) and the entries of /proc/PID/fd. */
function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kB) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return { rssMB: (Number(kB[1]) * 1024) / 1e6, fds: readdirSync(`/proc/${pid}/fd`).length };
}

// ── one migration ────────────────────────────────────────────────────────────

interface Migration {
  n: number;
  id: string;
  totalMs: number;
  downtimeMs: number;
  iterations: number;
}

class SoakFailure extends Error {
  constructor(
    readonly reason: string,
    readonly record?: Props,
  ) {
    super(reason);
  }
}

/** Migrate the domain from `src` to `dst` and check what the header says; the source's figures. */
async function migrateOnce(n: number, src: BenchAgent, dst: BenchAgent, mover: Awaited<ReturnType<BenchAgent['client']>>): Promise<Migration> {
  const doc = await mover.request(migrateXml(DOMAIN, dst.address));
  const row = await src.migration(DOMAIN);
  if (!succeeded(doc)) throw new SoakFailure(`the migration failed: ${messagesOf(doc).join(' | ')}`, row);
  if (row?.['status'] !== 'completed') throw new SoakFailure(`answered with success but the source's record says ${row?.['status']}`, row);
  const id = row['id']!;
  const target = await waitFor(
    async () => (await dst.migrations(DOMAIN)).find((p) => p['id'] === id && p['role'] === 'target' && p['status'] !== 'active' && p['status'] !== 'setup' && p['status'] !== 'device'),
    SETTLE_MS,
    `${dst.name}'s record of migration ${id} finished`,
  ).catch((err: Error) => {
    throw new SoakFailure(err.message, row);
  });
  if (target['status'] !== 'completed') throw new SoakFailure(`the target's record says ${target['status']}: ${target['error'] ?? ''}`, row);
  // Exactly one agent has the domain: the source none, the target a running one, unmarked.
  await waitFor(
    async () => {
      const [here, there] = await Promise.all([src.listDomain(DOMAIN), dst.listDomain(DOMAIN)]);
      return here === undefined && there?.['state'] === 'active' && there['flags'] === '-n----' ? true : undefined;
    },
    SETTLE_MS,
    `${DOMAIN} gone from ${src.name} and running unmarked on ${dst.name}`,
  ).catch(async (err: Error) => {
    const [here, there] = await Promise.all([src.listDomain(DOMAIN), dst.listDomain(DOMAIN)]);
    throw new SoakFailure(`${err.message}: ${src.name} lists ${JSON.stringify(here ?? null)}, ${dst.name} lists ${JSON.stringify(there ?? null)}`, row);
  });
  const digest = row['digest'];
  if (!digest || !/^[0-9a-f]{16}$/.test(digest)) throw new SoakFailure(`the source reports no digest (${digest ?? 'none'})`, row);
  if (target['digest'] !== digest) throw new SoakFailure(`digests differ: source ${digest}, target ${target['digest'] ?? 'none'}`, row);
  const downtimeMs = Number(row['downtime']);
  if (!(downtimeMs > 0)) throw new SoakFailure(`no downtime recorded (${row['downtime']})`, row);
  return { n, id, totalMs: Number(row['total-time']), downtimeMs, iterations: Number(row['iterations']) };
}

// ── samples and the report ───────────────────────────────────────────────────

interface Sample {
  migrations: number;
  elapsedS: number;
  /** Over the migrations since the previous sample. */
  downtimeMs: { median: number; max: number } | null;
  totalTimeMs: { median: number } | null;
  passes: { min: number; max: number } | null;
  /** Where the guest is when the sample is taken. */
  guestOn: string;
  agents: Record<string, ProcessSample>;
}

const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function takeSample(agents: BenchAgent[], done: Migration[], since: number, startedAt: number, guestOn: string): Sample {
  const window = done.slice(since);
  const downs = window.map((m) => m.downtimeMs);
  const passes = window.map((m) => m.iterations);
  return {
    migrations: done.length,
    elapsedS: Math.round((performance.now() - startedAt) / 100) / 10,
    downtimeMs: window.length ? { median: median(downs), max: Math.max(...downs) } : null,
    totalTimeMs: window.length ? { median: median(window.map((m) => m.totalMs)) } : null,
    passes: window.length ? { min: Math.min(...passes), max: Math.max(...passes) } : null,
    guestOn,
    agents: Object.fromEntries(agents.map((a) => [a.name, sampleProcess(a.pid!)])),
  };
}

function sampleLine(s: Sample, total: number): string {
  const width = String(total).length;
  const head = `${String(s.migrations).padStart(width)}/${total} migrations  ${fmt(s.elapsedS, 1).padStart(6)} s`;
  const figures = s.downtimeMs
    ? `  downtime median ${fmt(s.downtimeMs.median).padStart(4)} ms max ${fmt(s.downtimeMs.max).padStart(4)} ms` +
      `  total median ${fmt(s.totalTimeMs!.median).padStart(5)} ms  passes ${s.passes!.min}-${s.passes!.max}`
    : '  (before the first migration)';
  const procs = Object.entries(s.agents)
    .map(([name, p]) => `${name} RSS ${fmt(p.rssMB, 1).padStart(6)} MB ${String(p.fds).padStart(3)} fds`)
    .join('  ');
  return `${head}${figures}  |  ${procs}`;
}

interface Verdict {
  judged: boolean;
  flat: boolean;
  lines: string[];
}

/** The sample after warm-up against the one after the last whole ten. */
function flatness(samples: Sample[], warmUp: number): Verdict {
  const first = samples.find((s) => s.migrations === warmUp);
  const whole = samples.filter((s) => s.migrations > 0 && s.migrations % EVERY === 0);
  const last = whole.at(-1);
  const rule = `RSS within +${RSS_GROWTH * 100} % and open fds within +${FD_GROWTH} of the sample after migration ${warmUp}`;
  if (!first || !last || last === first) return { judged: false, flat: true, lines: [`RSS/fds: not judged (${rule} needs at least ${warmUp + EVERY} migrations)`] };
  let flat = true;
  const lines = Object.keys(first.agents).map((name) => {
    const a = first.agents[name]!;
    const b = last.agents[name]!;
    const growth = b.rssMB / a.rssMB - 1;
    const rssOk = growth <= RSS_GROWTH;
    const fdOk = b.fds - a.fds <= FD_GROWTH;
    const peak = Math.max(...samples.filter((s) => s.migrations >= warmUp).map((s) => s.agents[name]!.rssMB));
    flat &&= rssOk && fdOk;
    return (
      `${name}: RSS ${fmt(a.rssMB, 1)} -> ${fmt(b.rssMB, 1)} MB (${growth >= 0 ? '+' : ''}${fmt(growth * 100, 1)} %, peak ${fmt(peak, 1)} MB) ${rssOk ? 'flat' : 'GREW'}; ` +
      `fds ${a.fds} -> ${b.fds} (${b.fds - a.fds >= 0 ? '+' : ''}${b.fds - a.fds}) ${fdOk ? 'flat' : 'GREW'}`
    );
  });
  return { judged: true, flat, lines: [`RSS/fds, migration ${first.migrations} -> ${last.migrations} (flat: ${rule}):`, ...lines.map((l) => `  ${l}`)] };
}

function machine(): Record<string, unknown> {
  return {
    hostname: hostname(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
  };
}

/** The last `lines` lines of an agent's output. */
const tail = (text: string, lines = 60) => text.trimEnd().split('\n').slice(-lines).join('\n');

// ── the soak ─────────────────────────────────────────────────────────────────

async function soak(s: Settings): Promise<number> {
  const vars = { 'sim-working-set': formatSize(s.workingSet), 'sim-fill': 'random', 'sim-dirty-rate': formatSize(s.dirtyRate) };
  console.log(
    `soak: ${s.migrations} live migrations of a 1G guest, ${formatSize(s.workingSet)} random working set rewritten at ${formatSize(s.dirtyRate)}/s, ` +
      `back and forth between two agents (child processes, loopback TLS); a line every ${EVERY} (downtime, total time and passes over those ${EVERY})`,
  );
  const agents = await startAgents([
    ['alpha', {}],
    ['beta', {}],
  ]);
  const [alpha, beta] = agents as [BenchAgent, BenchAgent];
  const stop = () => Promise.all(agents.map((a) => a.stop()));
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`soak: ${sig}, stopping the agents`);
    void stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const samples: Sample[] = [];
  const done: Migration[] = [];
  let failure: { n: number; from: string; to: string; reason: string; record?: Props; logs: Record<string, string> } | undefined;
  let elapsedStart = performance.now();
  try {
    console.log(`agents: alpha pid ${alpha.pid} on ${alpha.address}, beta pid ${beta.pid} on ${beta.address}`);
    const movers = new Map([
      [alpha, await alpha.client()],
      [beta, await beta.client()],
    ]);
    await alpha.runningDomain(DOMAIN, '1G', vars);
    await waitFor(async () => {
      const p = await alpha.listDomain(DOMAIN);
      return p?.['sim-workload'] === 'rewriting' && Number(p['sim-filled']) >= s.workingSet;
    }, 120_000, 'the working set filled', 100);
    elapsedStart = performance.now();
    samples.push(takeSample(agents, done, 0, elapsedStart, alpha.name));
    console.log(sampleLine(samples[0]!, s.migrations));

    let [src, dst] = [alpha, beta];
    let since = 0;
    for (let n = 1; n <= s.migrations; n++) {
      try {
        done.push(await migrateOnce(n, src, dst, movers.get(src)!));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        failure = { n, from: src.name, to: dst.name, reason, record: err instanceof SoakFailure ? err.record : undefined, logs: {} };
        break;
      }
      [src, dst] = [dst, src];
      if (n % EVERY === 0 || n === s.migrations) {
        await new Promise((r) => setTimeout(r, SAMPLE_DELAY_MS));
        const sample = takeSample(agents, done, since, elapsedStart, src.name);
        since = done.length;
        samples.push(sample);
        console.log(sampleLine(sample, s.migrations));
      }
    }
    if (failure) for (const a of agents) failure.logs[a.name] = a.log;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop();
  }

  const verdict = flatness(samples, s.warmUp);
  const downs = done.map((m) => m.downtimeMs);
  const totals = done.map((m) => m.totalMs);
  const summary = done.length
    ? `${done.length} completed, digests equal on both sides of each; downtime median ${fmt(median(downs))} ms, max ${fmt(Math.max(...downs))} ms; ` +
      `total time median ${fmt(median(totals))} ms; passes ${Math.min(...done.map((m) => m.iterations))}-${Math.max(...done.map((m) => m.iterations))}`
    : 'no migration completed';
  console.log(`migrations: ${summary}`);
  for (const l of verdict.lines) console.log(l);
  if (failure) {
    console.log(`FAILED: migration ${failure.n} (${failure.from} -> ${failure.to}): ${failure.reason}`);
    if (failure.record) console.log(`source record: ${JSON.stringify(failure.record)}`);
    for (const [name, log] of Object.entries(failure.logs)) console.log(`--- ${name}'s log (last 60 lines) ---\n${tail(log) || '(empty)'}`);
  }
  const ok = !failure && done.length === s.migrations && verdict.flat;
  const why = failure ? `migration ${failure.n} failed` : !verdict.flat ? 'RSS or open fds grew beyond the bound' : verdict.judged ? 'every migration checked, RSS and fds flat' : 'every migration checked (flatness not judged)';
  console.log(`verdict: ${ok ? 'PASS' : 'FAIL'} (${why})`);

  const [load] = loadavg();
  const results = {
    date: new Date().toISOString(),
    machine: { ...machine(), loadAverage1m: Math.round(load! * 100) / 100 },
    settings: { migrations: s.migrations, domainMemory: '1G', workingSet: formatSize(s.workingSet), fill: 'random', dirtyRate: `${formatSize(s.dirtyRate)}/s`, sampleEvery: EVERY },
    flatRule: { warmUpMigrations: s.warmUp, rssGrowthMax: RSS_GROWTH, fdGrowthMax: FD_GROWTH },
    samples,
    summary: done.length
      ? { completed: done.length, downtimeMs: { median: median(downs), max: Math.max(...downs) }, totalTimeMs: { median: median(totals) } }
      : { completed: 0 },
    flat: verdict.judged ? verdict.flat : null,
    failure: failure ? { migration: failure.n, from: failure.from, to: failure.to, reason: failure.reason, record: failure.record ?? null } : null,
    verdict: ok ? 'pass' : 'fail',
  };
  writeFileSync(s.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`samples written to ${s.out}`);
  return ok ? 0 : 1;
}

try {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    console.log(USAGE);
    process.exitCode = 0;
  } else process.exitCode = await soak(parseArgs(args));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`${err.message}\n${USAGE}`);
    process.exitCode = 2;
  } else throw err;
}
