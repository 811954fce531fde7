/**
 * The migration page stream between two processes over loopback TLS, beside raw TLS
 * carrying the same bytes in the same run:
 *
 *   raw TLS       the sender writes the page stream's bytes, framed beforehand, to a
 *                 node:tls socket as fast as the socket takes them; the receiver (a
 *                 child process) counts and drops them. Node and TLS alone.
 *   page stream   the sender reads the guest's pages into frames (sendPass, running
 *                 digest); the receiver decodes them into its own guest (applyBatch,
 *                 running digest). Ratio = raw time / page-stream time (goal >= 0.9).
 *   no digest     the same without the running digests on either side: what the
 *                 digest costs.
 *
 * Each figure is the median of ROUNDS rounds, the three kinds interleaved so that they
 * see the same machine. The guest holds MIB MiB of random pages (default 128).
 *
 * Then real migrations between agents (child processes, bench/agents.ts), each figure
 * read from list-migrations on the source and set beside the raw TLS figure of the same
 * run (one more raw round runs before each migration of the idle guest):
 *
 *   idle guest    working set 1G random, no dirtying, moved back and forth REPEATS
 *                 times: pre-copy throughput (transferred / (total-time - setup-time
 *                 - downtime)), total time against transferred / raw, downtime.
 *   dirtying      64M/s over a 512M working set, back and forth: downtime, and the
 *                 expected-downtime the source reported beside it.
 *   cancel        a third agent with a bandwidth limit migrates a guest and cancels in
 *                 the first pass: time to the cancel's answer, and to the first
 *                 list-domain showing the source domain unmarked and running.
 *
 * Sizes come from LDM_BENCH_* variables (bench/README.md); LDM_BENCH_QUICK=1 shrinks
 * them to 64 MiB to check that it all runs.
 *
 *   npm run bench -- migration            (LDM_BENCH_MIGRATION_MIB=512 for a larger guest)
 *   node --import tsx bench/migration.ts receiver KEY CERT   (the child; prints its port)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureCerts } from '../agent/auth/certs.ts';
import type { Guest, PageData } from '../agent/hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { formatSize, parseSize } from '../agent/model/sizes.ts';
import { applyBatch, PageStreamDecoder, PageStreamEncoder, sendPass } from '../agent/migration/channel.ts';
import { RunningDigest } from '../agent/migration/digest.ts';
import { BenchAgent, data, migrateXml, request, startAgents, succeeded, messagesOf, waitFor, type Props } from './agents.ts';
import { figure, median } from './measure.ts';

const ROUNDS = 5;
type Mode = 'raw' | 'pages' | 'nodigest';

// ── the receiver (child process) ─────────────────────────────────────────────

/**
 * One TLS connection per transfer; its first byte says the mode (r, p or n). It answers
 * with one line once the transfer is whole: bytes seen, and the digest for `p`.
 */
function receiver(key: string, cert: string, mib: number): void {
  const hv = new SimHypervisor({ memoryBudget: 2 * mib * 2 ** 20 + 2 ** 30 });
  let round = 0;
  const server = tls.createServer({ key, cert, minVersion: 'TLSv1.2' }, (socket) => {
    let mode: string | undefined;
    let guest: Guest | undefined;
    let decoder: PageStreamDecoder | undefined;
    let seen = 0;
    let expected = -1;
    const digest = new RunningDigest();
    // The answer, then the scrub of the guest, then the end: the sender's clock stops at the
    // answer and its next round waits for the end, so no scrub overlaps a measured transfer.
    const finish = (line: string) => {
      socket.write(`${line}\n`);
      void (guest ? guest.destroy() : Promise.resolve()).then(() => socket.end());
    };
    socket.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (mode === undefined) {
        mode = String.fromCharCode(data[0]!);
        expected = data.readUInt32BE(1) * 1024;
        data = data.subarray(5);
        if (mode !== 'r') {
          guest = hv.create({ name: `g${round++}`, memoryBytes: mib * 2 ** 20 });
          const withDigest = mode === 'p';
          const target = guest;
          decoder = new PageStreamDecoder({ guestPages: guest.pages }, {
            pages: (batch) => applyBatch(target, batch, withDigest ? digest : undefined),
            control: () => {},
            end: () => finish(`${seen} ${digest.hex}`),
          });
        }
      }
      seen += data.length;
      if (decoder) decoder.write(data);
      else if (seen >= expected) finish(`${seen}`);
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    process.stdout.write(`listening ${a.port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

// ── sizes ────────────────────────────────────────────────────────────────────

interface Sizes {
  quick: boolean;
  /** The page-stream guest (MiB of random pages). */
  streamMiB: number;
  /** The idle guest's working set (random, no dirtying): pre-copy throughput, total time, idle downtime. */
  idleSet: number;
  /** The dirtying guest: working set and rewrite rate (bytes/s). */
  dirtySet: number;
  dirtyRate: number;
  /** Migrations of each guest, back and forth between the two agents. */
  repeats: number;
  /** The guest migrated and cancelled, and the source's bandwidth limit that keeps its copy in pre-copy. */
  cancelSet: number;
  cancelBandwidth: number;
  cancelRepeats: number;
}

const MiB = 2 ** 20;

function envNumber(name: string, fallback: number, read: (v: string) => number | null = (v) => (/^\d+$/.test(v) ? Number(v) : null)): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = read(v);
  if (n === null || !(n > 0)) throw new Error(`${name}=${v}: expected a positive ${read === parseSize ? 'size such as 64M or 1G' : 'whole number'}`);
  return n;
}

/** Issue 8's sizes unless LDM_BENCH_QUICK=1 (64 MiB everywhere: a check that it all runs) or the variables say otherwise. */
function benchSizes(): Sizes {
  const quick = process.env['LDM_BENCH_QUICK'] === '1';
  const size = (name: string, full: number, small: number) => envNumber(name, quick ? small : full, parseSize);
  return {
    quick,
    streamMiB: envNumber('LDM_BENCH_MIGRATION_MIB', quick ? 64 : 128),
    idleSet: size('LDM_BENCH_MIGRATION_IDLE_SET', 1024 * MiB, 64 * MiB),
    dirtySet: size('LDM_BENCH_MIGRATION_DIRTY_SET', 512 * MiB, 64 * MiB),
    dirtyRate: size('LDM_BENCH_MIGRATION_DIRTY_RATE', 64 * MiB, 8 * MiB),
    repeats: envNumber('LDM_BENCH_MIGRATION_REPEATS', 3),
    cancelSet: size('LDM_BENCH_MIGRATION_CANCEL_SET', 64 * MiB, 64 * MiB),
    cancelBandwidth: envNumber('LDM_BENCH_MIGRATION_CANCEL_BANDWIDTH', 16_000_000),
    cancelRepeats: envNumber('LDM_BENCH_MIGRATION_CANCEL_REPEATS', 5),
  };
}

// ── real migrations between agents ───────────────────────────────────────────

interface AgentFigures {
  /** One entry per migration of the idle guest (list-migrations on the source). */
  idle: Props[];
  /** One entry per migration of the dirtying guest. */
  busy: Props[];
  /** Per cancel: ms from sending cancel-operation to its answer, and to list-domain showing the source running unmarked. */
  cancelAnswerMs: number[];
  cancelRunningMs: number[];
  /** Median list-domain round trip on the cancelling source: what one request costs there. */
  roundTripMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Domain memory for a working set: twice the set, whole GiB, at least 1G (the first pass sends touched pages only). */
const domainMemory = (set: number) => `${Math.max(1, Math.ceil((2 * set) / 2 ** 30))}G`;

/**
 * Three agents: alpha and beta move the idle and the dirtying guest back and forth
 * (`rawRound` runs before each idle migration); gamma, with a bandwidth limit, migrates
 * a guest to beta and cancels it during pre-copy.
 */
async function agentFigures(sizes: Sizes, rawRound: () => Promise<void>): Promise<AgentFigures> {
  // Each agent may hold every guest at once, plus room: the target reserves before the source lets go.
  const guestMemory = String(2 * (sizes.idleSet + sizes.dirtySet + sizes.cancelSet) + 2 ** 30);
  const [alpha, beta, gamma] = await startAgents([
    ['alpha', { guestMemory }],
    ['beta', { guestMemory }],
    ['gamma', { guestMemory, config: { migration: { maxBandwidth: sizes.cancelBandwidth } } }],
  ]);
  try {
    const movers = new Map<BenchAgent, Awaited<ReturnType<BenchAgent['client']>>>();
    for (const a of [alpha!, beta!, gamma!]) movers.set(a, await a.client());
    /** migrate-domain from `src` to `dst`, which must complete; the source's list-migrations row. */
    const migrate = async (src: BenchAgent, dst: BenchAgent, name: string): Promise<Props> => {
      const doc = await movers.get(src)!.request(migrateXml(name, dst.address));
      const row = await src.migration(name);
      if (!succeeded(doc) || row?.['status'] !== 'completed') throw new Error(`migration of ${name} ${src.name} -> ${dst.name} failed: ${messagesOf(doc).join('; ')}`);
      return row;
    };
    const workload = (a: BenchAgent, name: string, want: string, set: number) =>
      waitFor(async () => {
        const p = await a.listDomain(name);
        return p?.['sim-workload'] === want && Number(p['sim-filled']) >= set;
      }, 600_000, `${name} on ${a.name}: working set filled (${want})`, 100);
    const vars = (set: number, rate: number) => ({ 'sim-working-set': formatSize(set), 'sim-fill': 'random', 'sim-dirty-rate': String(rate) });

    const idle: Props[] = [];
    await alpha!.runningDomain('idle', domainMemory(sizes.idleSet), vars(sizes.idleSet, 0));
    let [src, dst] = [alpha!, beta!];
    for (let i = 0; i < sizes.repeats; i++) {
      await workload(src, 'idle', 'idle', sizes.idleSet);
      await rawRound();
      idle.push(await migrate(src, dst, 'idle'));
      [src, dst] = [dst, src];
    }

    const busy: Props[] = [];
    await alpha!.runningDomain('busy', domainMemory(sizes.dirtySet), vars(sizes.dirtySet, sizes.dirtyRate));
    [src, dst] = [alpha!, beta!];
    for (let i = 0; i < sizes.repeats; i++) {
      await workload(src, 'busy', 'rewriting', sizes.dirtySet);
      // A second of rewriting first, so the guest dirties at its rate when the copy starts.
      await sleep(1000);
      busy.push(await migrate(src, dst, 'busy'));
      [src, dst] = [dst, src];
    }
    // Its rewrites would compete with what follows.
    await src.must(request('stop-domain', data('busy')));

    const cancelAnswerMs: number[] = [];
    const cancelRunningMs: number[] = [];
    await gamma!.runningDomain('slow', domainMemory(sizes.cancelSet), vars(sizes.cancelSet, 8 * MiB));
    const [poller, canceller] = [await gamma!.client(), await gamma!.client()];
    const trips: number[] = [];
    for (let i = 0; i < 21; i++) {
      const start = performance.now();
      await gamma!.listDomain('slow', poller);
      trips.push(performance.now() - start);
    }
    for (let i = 0; i < sizes.cancelRepeats; i++) {
      await workload(gamma!, 'slow', 'rewriting', sizes.cancelSet);
      const pending = movers.get(gamma!)!.request(migrateXml('slow', beta!.address));
      await waitFor(async () => {
        const m = await gamma!.migration('slow');
        return m?.['status'] === 'active' && m['phase'] === 'precopy';
      }, 30_000, 'the migration in pre-copy', 20);
      await sleep(300);
      const start = performance.now();
      const answered = canceller.request(request('cancel-operation', data('slow'), 'migration')).then((doc) => ({ doc, ms: performance.now() - start }));
      // Back to back on a session of its own: the first listing that shows the source unmarked and running.
      const running = await waitFor(async () => {
        const p = await gamma!.listDomain('slow', poller);
        return p?.['flags']?.[5] === '-' && p['sim-workload'] !== 'stopped' && p['state'] === 'active' ? performance.now() - start : 0;
      }, 30_000, 'the source running after the cancel', 0);
      const { doc, ms } = await answered;
      if (!succeeded(doc)) throw new Error(`cancel-operation refused: ${messagesOf(doc).join('; ')}`);
      const row = await gamma!.migration('slow');
      if (row?.['status'] !== 'cancelled' || row['iterations'] !== '0') throw new Error(`not a cancel during the first pass: ${JSON.stringify(row)}`);
      cancelAnswerMs.push(ms);
      cancelRunningMs.push(running);
      await pending;
      await waitFor(async () => (await beta!.listDomain('slow')) === undefined, 30_000, 'the target clean');
    }
    return { idle, busy, cancelAnswerMs, cancelRunningMs, roundTripMs: median(trips) };
  } finally {
    await Promise.all([alpha!, beta!, gamma!].map((a) => a.stop()));
  }
}

// ── the table ────────────────────────────────────────────────────────────────

const n = (p: Props, k: string) => Number(p[k]);
/** Pre-copy time: total-time - setup-time - downtime (also holds the source's final save of the record, a few ms). */
const precopyMs = (p: Props) => n(p, 'total-time') - n(p, 'setup-time') - n(p, 'downtime');
const fmt = (x: number, digits = x >= 100 ? 0 : x >= 10 ? 1 : 2) => x.toFixed(digits);
const spread = (xs: number[], unit = '') => (xs.length > 1 ? `${fmt(median(xs))}${unit} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})` : `${fmt(xs[0]!)}${unit}`);
const yes = (ok: boolean) => (ok ? 'yes' : 'NO');

function report(sizes: Sizes, stream: { rawMiBps: number; pagesMiBps: number; bareMiBps: number }, f: AgentFigures): void {
  const raw = stream.rawMiBps;
  const rawBytesPerMs = (raw * MiB) / 1000;
  const agentMiBps = f.idle.map((p) => n(p, 'transferred') / MiB / (precopyMs(p) / 1000));
  const idealMs = f.idle.map((p) => n(p, 'transferred') / rawBytesPerMs);
  const totalRatio = f.idle.map((p, i) => n(p, 'total-time') / idealMs[i]!);
  const idleDown = f.idle.map((p) => n(p, 'downtime'));
  const busyDown = f.busy.map((p) => n(p, 'downtime'));
  const busyExpected = f.busy.map((p) => n(p, 'expected-downtime'));
  const expRatio = f.busy.map((p) => n(p, 'expected-downtime') / Math.max(1, n(p, 'downtime')));
  const rt = `${fmt(f.roundTripMs)} ms list-domain`;
  const rows: string[][] = [
    ['figure', 'measured', 'baseline (raw TLS, same run)', 'ratio', 'goal', 'met?'],
    ['1a pre-copy, page stream (bench -> child)', `${fmt(stream.pagesMiBps)} MiB/s`, `${fmt(raw)} MiB/s`, fmt(stream.pagesMiBps / raw), '>= 0.9', yes(stream.pagesMiBps / raw >= 0.9)],
    [`1b pre-copy, agents (idle ${formatSize(sizes.idleSet)} random)`, spread(agentMiBps, ' MiB/s'), `${fmt(raw)} MiB/s`, fmt(median(agentMiBps) / raw), '>= 0.9', yes(median(agentMiBps) / raw >= 0.9)],
    [`2  total time, idle ${formatSize(sizes.idleSet)}`, spread(f.idle.map((p) => n(p, 'total-time')), ' ms'), `${fmt(median(idealMs))} ms (bytes/raw)`, spread(totalRatio), '<= 1.1', yes(median(totalRatio) <= 1.1)],
    ['3a downtime, idle guest', spread(idleDown, ' ms'), '-', '-', '<= 10 ms', yes(median(idleDown) <= 10)],
    [`3b downtime, ${formatSize(sizes.dirtyRate)}/s over ${formatSize(sizes.dirtySet)}`, spread(busyDown, ' ms'), '-', '-', '<= 300 ms', yes(median(busyDown) <= 300)],
    ['3c expected-downtime / measured (3b)', spread(busyExpected, ' ms'), `${fmt(median(busyDown))} ms measured`, spread(expRatio), '0.8-1.2', yes(Math.abs(median(expRatio) - 1) <= 0.2)],
    ['4  page stream without digests', `${fmt(stream.bareMiBps)} MiB/s`, `${fmt(stream.pagesMiBps)} MiB/s with`, `${fmt(stream.bareMiBps / stream.pagesMiBps)} time with/without`, '-', '-'],
    ['5a cancel -> its answer', spread(f.cancelAnswerMs, ' ms'), rt, fmt(median(f.cancelAnswerMs) / f.roundTripMs), '-', '-'],
    ['5b cancel -> source running, unmarked', spread(f.cancelRunningMs, ' ms'), rt, fmt(median(f.cancelRunningMs) / f.roundTripMs), '-', '-'],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  console.log('measured: median (min-max) over the repeats; agents\' figures from list-migrations on the source.');
  const detail = (p: Props) => `${p['iterations']} passes, throttle ${p['throttle-percentage']} %, ${fmt(n(p, 'transferred') / MiB)} MiB, setup ${p['setup-time']} ms`;
  console.log(`idle guest: ${f.idle.map(detail).join(' | ')}`);
  console.log(`dirtying guest: ${f.busy.map(detail).join(' | ')}`);
  record(sizes, stream, f, { agentMiBps, idealMs, idleDown, busyDown, busyExpected });
  const [load] = loadavg();
  console.log(`load average (1 min) at the end: ${load!.toFixed(1)} on ${availableParallelism()} cores${load! > 1 ? ' (other work was running: read the ratios)' : ''}`);
}

/** The table's figures for bench/results.json, with issue 8's goals. */
function record(
  sizes: Sizes,
  stream: { rawMiBps: number; pagesMiBps: number; bareMiBps: number },
  f: AgentFigures,
  d: { agentMiBps: number[]; idealMs: number[]; idleDown: number[]; busyDown: number[]; busyExpected: number[] },
): void {
  const raw = 'raw TLS of the same bytes between two processes';
  const idle = `idle guest, ${formatSize(sizes.idleSet)} of random pages (median of ${f.idle.length})`;
  const busy = `guest dirtying ${formatSize(sizes.dirtyRate)}/s over ${formatSize(sizes.dirtySet)} (median of ${f.busy.length})`;
  const cancels = `cancel-operation migration during pre-copy (median of ${f.cancelAnswerMs.length})`;
  const rt = 'list-domain round trip on the same agent';
  figure({ figure: `migration page stream, ${sizes.streamMiB} MiB guest, two processes over loopback TLS`, value: stream.pagesMiBps, unit: 'MiB/s', baseline: raw, baselineValue: stream.rawMiBps, goal: '>= 0.9' });
  figure({ figure: `migration between two agents, pre-copy throughput, ${idle}`, value: median(d.agentMiBps), unit: 'MiB/s', baseline: raw, baselineValue: stream.rawMiBps, goal: '>= 0.9' });
  figure({ figure: `migration between two agents, total time, ${idle}`, value: median(f.idle.map((p) => n(p, 'total-time'))), unit: 'ms', baseline: 'its bytes at raw TLS speed', baselineValue: median(d.idealMs), goal: '<= 1.1x' });
  figure({ figure: `migration downtime, ${idle}`, value: median(d.idleDown), unit: 'ms', baseline: null, baselineValue: null, goal: '<= 10 ms' });
  figure({ figure: `migration downtime, ${busy}`, value: median(d.busyDown), unit: 'ms', baseline: null, baselineValue: null, goal: '<= 300 ms' });
  figure({ figure: `migration expected-downtime reported, ${busy}`, value: median(d.busyExpected), unit: 'ms', baseline: 'measured downtime of the same migrations', baselineValue: median(d.busyDown), goal: '0.8-1.2' });
  figure({ figure: `migration page stream with the running digests, ${sizes.streamMiB} MiB guest`, value: stream.pagesMiBps, unit: 'MiB/s', baseline: 'the same without digests', baselineValue: stream.bareMiBps });
  figure({ figure: `${cancels} -> its answer`, value: median(f.cancelAnswerMs), unit: 'ms', baseline: rt, baselineValue: f.roundTripMs });
  figure({ figure: `${cancels} -> source running, unmarked`, value: median(f.cancelRunningMs), unit: 'ms', baseline: rt, baselineValue: f.roundTripMs });
}

// ── the sender (this process) ────────────────────────────────────────────────

function startReceiver(key: string, cert: string, mib: number): Promise<{ child: ChildProcess; port: number }> {
  const me = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', me, 'receiver', key, cert, String(mib)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`receiver exited (${code})`)));
  });
}

function connect(port: string | number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', minVersion: 'TLSv1.2' }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The receiver's answer line (when it comes), and the end of the connection. */
function answer(socket: tls.TLSSocket): { line: Promise<string>; ended: Promise<void> } {
  let text = '';
  let got!: (line: string) => void;
  const line = new Promise<string>((resolve) => (got = resolve));
  socket.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.includes('\n')) got(text.trim());
  });
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { line, ended };
}

/** Write `bytes` as fast as the socket takes them (the same 2 MiB pieces a batch is). */
async function writeRaw(socket: tls.TLSSocket, bytes: Buffer): Promise<void> {
  const piece = 2 * 2 ** 20;
  for (let off = 0; off < bytes.length; off += piece) {
    if (!socket.write(bytes.subarray(off, off + piece))) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

export async function run(): Promise<void> {
  const sizes = benchSizes();
  const mib = sizes.streamMiB;
  const dir = mkdtempSync(join(tmpdir(), 'ldm-bench-migration-'));
  const certs = await ensureCerts(join(dir, 'certs'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const key = certs.paths.serverKey;
  const cert = certs.paths.server;
  const ca = readFileSync(certs.paths.ca, 'utf8');
  const { child, port } = await startReceiver(key, cert, mib);
  const hv = new SimHypervisor({ memoryBudget: mib * 2 ** 20 + 2 ** 30 });
  try {
    const guest = hv.create({ name: 'src', memoryBytes: mib * 2 ** 20 });
    const pages: PageData[] = [];
    for (let p = 0; p < guest.pages; p++) pages.push({ index: p, bytes: randomBytes(PAGE_SIZE) });
    for (let i = 0; i < pages.length; i += 4096) guest.writePages(pages.slice(i, i + 4096));
    pages.length = 0;
    const indexes = Uint32Array.from({ length: guest.pages }, (_, i) => i);
    // The raw run sends exactly the bytes the page stream sends.
    const parts: Buffer[] = [];
    const framer = new PageStreamEncoder(new Writable({ write: (c: Buffer, _e, cb) => (parts.push(Buffer.from(c)), cb()) }));
    await sendPass(guest, indexes, framer);
    await framer.end();
    const stream = Buffer.concat(parts);
    parts.length = 0;
    const header = (mode: string) => {
      const h = Buffer.alloc(5);
      h.write(mode, 0, 'latin1');
      h.writeUInt32BE(Math.ceil(stream.length / 1024), 1);
      return h;
    };

    const once = async (mode: Mode): Promise<number> => {
      const socket = await connect(port, ca);
      const done = answer(socket);
      socket.write(header(mode === 'raw' ? 'r' : mode === 'pages' ? 'p' : 'n'));
      const start = performance.now();
      let digest: RunningDigest | undefined;
      if (mode === 'raw') {
        // Pad to the whole KiB the receiver waits for.
        await writeRaw(socket, Buffer.concat([stream, Buffer.alloc(Math.ceil(stream.length / 1024) * 1024 - stream.length)]));
      } else {
        const encoder = new PageStreamEncoder(socket);
        digest = mode === 'pages' ? new RunningDigest() : undefined;
        await sendPass(guest, indexes, encoder, digest);
        await encoder.end();
      }
      const got = await done.line;
      const ms = performance.now() - start;
      await done.ended;
      if (digest && got.split(' ')[1] !== digest.hex) throw new Error(`digests differ: ${got} vs ${digest.hex}`);
      return ms;
    };

    const times: Record<Mode, number[]> = { raw: [], pages: [], nodigest: [] };
    await once('raw');
    await once('pages');
    for (let r = 0; r < ROUNDS; r++) for (const mode of ['raw', 'pages', 'nodigest'] as Mode[]) times[mode].push(await once(mode));
    const mibps = (ms: number) => stream.length / 2 ** 20 / (ms / 1000);
    console.log(`page stream: ${mib} MiB of random pages, ${(stream.length / 2 ** 20).toFixed(1)} MiB on the wire; median of ${ROUNDS} rounds`);
    // One more raw round before each agents' migration of the idle guest, so the baseline sees the same machine they do.
    const agents = await agentFigures(sizes, async () => {
      times.raw.push(await once('raw'));
    });
    const rawMs = median(times.raw);
    const rawMiBps = mibps(rawMs);
    const pagesMs = median(times.pages);
    const bareMs = median(times.nodigest);
    console.log(`raw TLS, same bytes, two processes: ${rawMiBps.toFixed(0)} MiB/s (median of all ${times.raw.length} raw rounds of this run)`);
    report(sizes, { rawMiBps, pagesMiBps: mibps(pagesMs), bareMiBps: mibps(bareMs) }, agents);
  } finally {
    child.kill('SIGTERM');
    await hv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === 'receiver') receiver(readFileSync(process.argv[3]!, 'utf8'), readFileSync(process.argv[4]!, 'utf8'), Number(process.argv[5]));
  else await run();
}
