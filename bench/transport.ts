/**
 * Transport benchmark: the XML interface on real sockets, each figure beside a baseline
 * measured in the same run.
 *
 *   round trip   one `list-domain` request at a time over one connection (p50, p99), to
 *                the agent as a child process (`bin/ldm-agent.js`, TLS after STARTTLS,
 *                SASL PLAIN as a remote client logs in), beside a TLS echo server, also a
 *                child process (bench/tls-echo.mjs, the agent's key and certificate), that
 *                answers the same request bytes with as many bytes as the agent's answer;
 *   throughput   8 connections, each sending its next request as soon as the previous one
 *                is answered, for BENCH_TRANSPORT_MS: requests/s, same two servers;
 *   fan-out      one event published on the bus of an agent in this process, delivered to
 *                1,000 subscribers (each registered with reg-domain-events): time until
 *                the last one has it, beside a plain server writing the same bytes to
 *                1,000 accepted sockets of the same kind (Unix socket; TLS over loopback).
 *
 * Round trip and throughput are measured twice on the agent's side: with `LdmClient` (what
 * a program using the client sees: it parses and decodes every answer) and with a raw
 * client that does the handshake itself and then only counts answer bytes, like the
 * echo client does; that second figure is the server's own cost. Fan-out is measured
 * with `LdmClient` subscribers and with raw ones in the same way.
 *
 * Environment: BENCH_TRANSPORT_REQUESTS (2000), BENCH_TRANSPORT_MS (3000),
 * BENCH_SUBSCRIBERS (1000), BENCH_FANOUT_REPEATS (7).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import tls, { type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_CONFIG, type AgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/daemon.ts';
import { LdmEvent } from '../agent/events/bus.ts';
import { silentLogger } from '../agent/log.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { NS } from '../agent/xmpp/wire.ts';
import { figure } from './measure.ts';

const REQUESTS = Number(process.env.BENCH_TRANSPORT_REQUESTS ?? 2000);
const THROUGHPUT_MS = Number(process.env.BENCH_TRANSPORT_MS ?? 3000);
const WANTED_SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const FANOUT_REPEATS = Number(process.env.BENCH_FANOUT_REPEATS ?? 7);
const CONNECTIONS = 8;
const WARMUP_REQUESTS = 300;
const THROUGHPUT_ROUNDS = 3;
const WARMUP_MS = 500;
const BLOCK = 250;

const AGENT_BIN = fileURLToPath(new URL('../bin/ldm-agent.js', import.meta.url));
const ECHO_BIN = fileURLToPath(new URL('./tls-echo.mjs', import.meta.url));

const REQUEST = '<LDM_interface version="1.3"><cmd><action>list-domain</action><data version="3.0"/></cmd></LDM_interface>';
const REQUEST_BYTES = Buffer.byteLength(REQUEST);
const REGISTER = '<LDM_interface version="1.3"><cmd><action>reg-domain-events</action></cmd></LDM_interface>';
const STREAM_HEADER = `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' to='localhost' version='1.0' xml:lang='en'>`;

const newEvent = () => new LdmEvent('domain', 'start-domain', { contents: [{ id: 'ldg1', sections: [] }], sections: [] });

// ---------------------------------------------------------------------------------------------
// Plumbing: children, sockets, cleanup

/** What to undo at the end, last first; runs even when a measurement fails. */
class Cleanup {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        console.error(`transport: cleanup step failed: ${(err as Error).message}`);
      }
    }
  }
}

interface Child {
  proc: ChildProcess;
  pid: number;
  match: RegExpExecArray;
  stop(): Promise<void>;
}

/** Spawn `node ARGS` and wait for its stdout to match `ready`. */
async function startChild(args: string[], ready: RegExp, cleanup: Cleanup): Promise<Child> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LDM_LOG_LEVEL: 'warn' } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  cleanup.add(stop);
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${args[0]} did not start within 30 s:\n${out}${err}`)), 30_000);
    const check = () => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve(m);
      }
    };
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => fail(new Error(`${args[0]} exited with ${code}:\n${out}${err}`)));
  });
  return { proc, pid: proc.pid!, match, stop };
}

/** Read from `socket` until the text received ends with `marker`; nothing may follow it. */
function readUntil(socket: Socket, marker: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', done);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes(marker)) done(text.trimEnd().endsWith(marker) ? undefined : new Error(`unexpected data after ${marker}: ${text}`));
    };
    const onClose = () => done(new Error(`connection closed while waiting for ${marker}; got: ${text}`));
    const timer = setTimeout(() => done(new Error(`no ${marker} within ${ms} ms; got: ${text}`)), ms);
    socket.on('data', onData);
    socket.on('error', done);
    socket.on('close', onClose);
  });
}

async function connected<S extends Socket>(socket: S, event: 'connect' | 'secureConnect'): Promise<S> {
  await once(socket, event);
  return socket;
}

/**
 * The agent's handshake done by hand, as LdmClient does it: stream, STARTTLS, TLS, stream,
 * then SASL PLAIN and a third stream when `auth` is given (a remote client) or nothing more
 * (a loopback client of an agent started with localTcp). Resolves with the TLS socket, online.
 */
async function rawAgentSession(port: number, ca: string, auth?: { user: string; password: string }): Promise<TLSSocket> {
  const plain = await connected(net.connect(port, '127.0.0.1'), 'connect');
  plain.write(STREAM_HEADER);
  await readUntil(plain, '</stream:features>');
  plain.write(`<starttls xmlns='${NS.tls}'/>`);
  await readUntil(plain, `<proceed xmlns='${NS.tls}'/>`);
  const secure = await connected(tls.connect({ socket: plain, ca, servername: 'localhost', minVersion: 'TLSv1.2' }), 'secureConnect');
  secure.write(STREAM_HEADER);
  await readUntil(secure, '</stream:features>');
  if (auth) {
    const payload = Buffer.from(`\0${auth.user}\0${auth.password}`, 'utf8').toString('base64');
    secure.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${payload}</auth>`);
    await readUntil(secure, `<success xmlns='${NS.sasl}'/>`);
    secure.write(STREAM_HEADER);
    await readUntil(secure, '</stream:features>');
  }
  return secure;
}

/** End a socket politely, and for good if the peer does not close within a second. */
async function closeSocket(socket: Socket, last?: string): Promise<void> {
  if (socket.destroyed) return;
  const closed = once(socket, 'close').catch(() => {});
  socket.on('error', () => {});
  if (last === undefined) socket.end();
  else socket.end(last);
  const timer = setTimeout(() => socket.destroy(), 1000);
  await closed;
  clearTimeout(timer);
}

/** Run `fn(0..n-1)` with at most `concurrency` at a time (a backlog of 1,000 connects at once overflows). */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

async function until(what: string, test: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`transport: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** CPU time (user + system) of a process in ms, from /proc; undefined where there is none. */
let clockTicks: number | undefined;
function processCpuMs(pid: number): number | undefined {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

/** CPU time all processors of the machine spent busy (not idle, not waiting for I/O), in ms, from /proc/stat. */
function machineBusyMs(): number | undefined {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, x) => a + x, 0);
    return ((total - fields[3]! - fields[4]!) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function openFileLimit(): number {
  try {
    const text = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return text === 'unlimited' ? Infinity : Number(text);
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
/** Nearest-rank percentile of sorted samples. */
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
const median = (xs: number[]) => {
  const s = sorted(xs);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const us = (ms: number) => `${Math.round(ms * 1000).toLocaleString('en-US')} µs`;
const msText = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pctOfCore = (cpuMs: number | undefined, wallMs: number) => (cpuMs === undefined ? '?' : `${Math.round((100 * cpuMs) / wallMs)} %`);

interface Row {
  figure: string;
  value: string;
  baseline: string;
  /** Our time (per request, or to deliver) over the baseline's. */
  ratio: number;
}

function printMarkdown(rows: Row[]): void {
  console.log('| figure | value | baseline (same run) | ratio |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.figure} | ${r.value} | ${r.baseline} | ${r.ratio.toFixed(2)}x time |`);
}

// ---------------------------------------------------------------------------------------------
// Round trip and throughput

/** One connection that can ask one request at a time. */
interface Rpc {
  call(): Promise<void>;
  close(): Promise<void>;
}

interface Side {
  name: string;
  /** Process id of the server, for its CPU time. */
  serverPid: number;
  open(): Promise<Rpc>;
}

/** A request/answer connection that only counts answer bytes (the echo client, and the raw agent client). */
function countingRpc(socket: Socket, answerBytes: number, last?: string): Rpc {
  let received = 0;
  let waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const lost = (err: Error) => {
    const w = waiter;
    waiter = undefined;
    w?.reject(err);
  };
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (waiter && received >= answerBytes) {
      received -= answerBytes;
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  socket.on('error', lost);
  socket.on('close', () => lost(new Error('connection closed')));
  return {
    call: () =>
      new Promise<void>((resolve, reject) => {
        if (socket.destroyed) return reject(new Error('connection closed'));
        waiter = { resolve, reject };
        socket.write(REQUEST);
      }),
    close: () => closeSocket(socket, last),
  };
}

function ldmRpc(client: LdmClient): Rpc {
  return {
    call: async () => {
      const answer = await client.request(REQUEST);
      if (answer.response?.status !== 'success') throw new Error(`transport: list-domain failed: ${JSON.stringify(answer.response)}`);
    },
    close: () => client.close(),
  };
}

interface LatencyResult {
  side: Side;
  samples: number[];
}

/** Warm every side up, then take turns in blocks, so a slow moment of the machine hits them alike. */
async function roundTrips(sides: Side[], rpcs: Rpc[]): Promise<LatencyResult[]> {
  for (const rpc of rpcs) for (let i = 0; i < WARMUP_REQUESTS; i++) await rpc.call();
  const samples: number[][] = sides.map(() => []);
  for (let done = 0; done < REQUESTS; done += BLOCK) {
    const n = Math.min(BLOCK, REQUESTS - done);
    for (let s = 0; s < sides.length; s++) {
      const rpc = rpcs[s]!;
      for (let i = 0; i < n; i++) {
        const start = performance.now();
        await rpc.call();
        samples[s]!.push(performance.now() - start);
      }
    }
  }
  return sides.map((side, i) => ({ side, samples: sorted(samples[i]!) }));
}

interface ThroughputResult {
  side: Side;
  /** Median over the rounds, requests per second. */
  rate: number;
  rounds: number[];
  /** CPU time over all rounds, ms: this process (the client), the server process, the whole machine. */
  clientCpu: number;
  serverCpu: number | undefined;
  machineCpu: number | undefined;
  wall: number;
}

interface Snapshot {
  t: number;
  n: number;
  client: number;
  server: number | undefined;
  machine: number | undefined;
}

/** CONNECTIONS closed loops for `ms`: requests answered and CPU time spent meanwhile. */
async function closedLoops(side: Side, rpcs: Rpc[], ms: number): Promise<{ count: number; wall: number; client: number; server?: number; machine?: number }> {
  let count = 0;
  let stop = false;
  const snap = (): Snapshot => ({ t: performance.now(), n: count, client: selfCpuMs(), server: processCpuMs(side.serverPid), machine: machineBusyMs() });
  const loops = rpcs.map(async (rpc) => {
    while (!stop) {
      await rpc.call();
      count++;
    }
  });
  const all = Promise.all(loops);
  all.catch(() => {}); // a failure is thrown below, after the sleep, not as an unhandled rejection
  const start = snap();
  await new Promise((r) => setTimeout(r, ms));
  const end = snap();
  stop = true;
  await all;
  const diff = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? b - a : undefined);
  return { count: end.n - start.n, wall: end.t - start.t, client: end.client - start.client, server: diff(start.server, end.server), machine: diff(start.machine, end.machine) };
}

/**
 * Each side warmed up, then THROUGHPUT_ROUNDS rounds per side, taking turns (other work on
 * the machine then hits every side alike); the median round's rate is reported.
 */
async function throughputs(sides: Side[], conns: Rpc[][], ms: number): Promise<ThroughputResult[]> {
  for (let s = 0; s < sides.length; s++) await closedLoops(sides[s]!, conns[s]!, WARMUP_MS);
  const rounds = Math.max(1, THROUGHPUT_ROUNDS);
  const runs: Awaited<ReturnType<typeof closedLoops>>[][] = sides.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let s = 0; s < sides.length; s++) runs[s]!.push(await closedLoops(sides[s]!, conns[s]!, ms / rounds));
  }
  const sum = (xs: (number | undefined)[]) => (xs.some((x) => x === undefined) ? undefined : xs.reduce<number>((a, x) => a + x!, 0));
  return sides.map((side, s) => {
    const rs = runs[s]!;
    const rates = rs.map((r) => (r.count * 1000) / r.wall);
    return {
      side,
      rate: median(rates),
      rounds: rates,
      clientCpu: sum(rs.map((r) => r.client))!,
      serverCpu: sum(rs.map((r) => r.server)),
      machineCpu: sum(rs.map((r) => r.machine)),
      wall: sum(rs.map((r) => r.wall))!,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Fan-out

/** Counts subscribers that have the event; resolves with the time the last one got it. */
class Arrivals {
  private remaining = 0;
  private waiter: { resolve: (t: number) => void; timer: NodeJS.Timeout } | undefined;

  arm(n: number, what: string): Promise<number> {
    this.remaining = n;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`transport: ${what}: ${this.remaining} of ${n} subscribers still without the event after 20 s`));
      }, 20_000);
      this.waiter = { resolve, timer };
    });
  }

  hit(): void {
    if (--this.remaining === 0 && this.waiter) {
      const now = performance.now();
      clearTimeout(this.waiter.timer);
      this.waiter.resolve(now);
      this.waiter = undefined;
    }
  }
}

/** Every `size` bytes that reach `socket` are one delivered event. */
function countEvents(socket: Socket, size: number, arrivals: Arrivals): void {
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    while (received >= size) {
      received -= size;
      arrivals.hit();
    }
  });
  socket.on('error', () => {});
}

interface Delivery {
  /** Until the publishing call (or the write loop) returned. */
  sync: number;
  /** Until the last subscriber had the whole event. */
  total: number;
}

async function deliver(publish: () => void, arrivals: Arrivals, n: number, what: string): Promise<Delivery> {
  const all = arrivals.arm(n, what);
  const start = performance.now();
  publish();
  const sync = performance.now() - start;
  const last = await all;
  await new Promise((r) => setTimeout(r, 20));
  return { sync, total: last - start };
}

interface FanoutResult {
  figure: string;
  ours: Delivery[];
  base: Delivery[];
  oursName: string;
  baseName: string;
}

/** A warm-up round each, then FANOUT_REPEATS rounds taking turns. */
async function compareFanout(figure: string, oursName: string, ours: () => Promise<Delivery>, baseName: string, base: () => Promise<Delivery>): Promise<FanoutResult> {
  await ours();
  await base();
  const a: Delivery[] = [];
  const b: Delivery[] = [];
  for (let r = 0; r < FANOUT_REPEATS; r++) {
    a.push(await ours());
    b.push(await base());
  }
  return { figure, ours: a, base: b, oursName, baseName };
}

/** A plain server holding `n` accepted sockets (Unix or TLS), and its `n` clients counting event bytes. */
interface Baseline {
  accepted: Socket[];
  clients: Socket[];
  close(): Promise<void>;
}

async function baselineServer(
  n: number,
  server: net.Server,
  listen: (cb: () => void) => void,
  connect: () => Promise<Socket>,
  acceptEvent: 'connection' | 'secureConnection',
): Promise<Baseline> {
  const accepted: Socket[] = [];
  server.on(acceptEvent, (s: Socket) => {
    s.on('error', () => {});
    accepted.push(s);
    // A Unix connect completes before the server accepts: the client waits for this byte, so
    // the connects in flight stay within the listen backlog (else EAGAIN).
    s.write('.');
  });
  await new Promise<void>((resolve) => listen(resolve));
  const clients = await pool(n, 64, async () => {
    const c = await connect();
    await readUntil(c, '.');
    return c;
  });
  await until('the baseline server to accept every client', () => accepted.length === n);
  return {
    accepted,
    clients,
    close: async () => {
      for (const c of clients) c.destroy();
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function fanout(certsDir: string, dir: string, subscribers: number, cleanup: Cleanup): Promise<{ results: FanoutResult[]; setup: string }> {
  const config: AgentConfig = {
    ...DEFAULT_CONFIG,
    listen: { host: '127.0.0.1', port: 0 },
    http: null,
    state: join(dir, 'fanout-var'),
    certs: certsDir,
    // Loopback TCP clients are local (no SASL): 1,000 TLS subscribers without 1,000 password checks.
    localTcp: true,
  };
  // Every subscriber comes from 127.0.0.1 or the local socket: lift the per-address and local allowances too.
  const allowance = Math.max(2000, subscribers + 64);
  const agent: RunningAgent = await startAgent(config, () => {}, silentLogger, {
    maxConnections: allowance,
    maxLocalConnections: allowance,
    maxConnectionsPerAddress: allowance,
  });
  cleanup.add(() => agent.stop());
  const ca = readFileSync(agent.certPaths.ca, 'utf8');
  const key = readFileSync(agent.certPaths.serverKey, 'utf8');
  const cert = readFileSync(agent.certPaths.server, 'utf8');
  const eventBytes = Buffer.byteLength(newEvent().text());
  const eventText = newEvent().text();
  const arrivals = new Arrivals();
  const results: FanoutResult[] = [];
  const publish = () => agent.bus.publish(newEvent());
  const waitForNoConnections = () => until('the agent to drop its subscribers', () => agent.xmpp.connectionCount === 0);

  // Baseline over the Unix socket: a net.Server writing the event text to each accepted socket.
  const basePath = join(dir, 'baseline.sock');
  const unixServer = net.createServer();
  const unixBase = await baselineServer(
    subscribers,
    unixServer,
    (cb) => unixServer.listen(basePath, cb),
    () => connected(net.connect(basePath), 'connect'),
    'connection',
  );
  cleanup.add(() => unixBase.close());
  for (const c of unixBase.clients) countEvents(c, eventBytes, arrivals);
  const unixBaseRound = () =>
    deliver(() => {
      for (const s of unixBase.accepted) s.write(eventText);
    }, arrivals, subscribers, 'net.Server, Unix socket');

  // 1. LdmClient subscribers on the agent's Unix socket.
  let t = performance.now();
  const clients = await pool(subscribers, 64, async () => {
    const c = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
    await c.request(REGISTER);
    c.onEvent(() => arrivals.hit());
    return c;
  });
  const clientsOpen = performance.now() - t;
  if (agent.bus.size < subscribers) throw new Error(`transport: only ${agent.bus.size} bus subscribers`);
  results.push(
    await compareFanout(
      `deliver one event to ${int(subscribers)} subscribers, Unix socket, LdmClient`,
      'agent bus.publish',
      () => deliver(publish, arrivals, subscribers, 'agent, LdmClient subscribers'),
      'net.Server writes',
      unixBaseRound,
    ),
  );
  await Promise.all(clients.map((c) => c.close()));
  await waitForNoConnections();

  // 2. Raw subscribers on the agent's Unix socket: the handshake by hand, then byte counting.
  t = performance.now();
  const raw = await pool(subscribers, 64, async () => {
    const s = await connected(net.connect(agent.unixPath), 'connect');
    s.write(STREAM_HEADER);
    await readUntil(s, '</stream:features>');
    s.write(REGISTER);
    await readUntil(s, '</LDM_interface>');
    countEvents(s, eventBytes, arrivals);
    return s;
  });
  const rawOpen = performance.now() - t;
  results.push(
    await compareFanout(
      `deliver one event to ${int(subscribers)} subscribers, Unix socket, raw clients`,
      'agent bus.publish',
      () => deliver(publish, arrivals, subscribers, 'agent, raw Unix subscribers'),
      'net.Server writes',
      unixBaseRound,
    ),
  );
  for (const s of raw) s.destroy();
  await waitForNoConnections();
  await unixBase.close();

  // 3. Raw subscribers over TLS on loopback TCP (STARTTLS, no SASL: localTcp), beside a tls.Server.
  t = performance.now();
  const rawTls = await pool(subscribers, 16, async () => {
    const s = await rawAgentSession(agent.address.port, ca);
    s.write(REGISTER);
    await readUntil(s, '</LDM_interface>');
    countEvents(s, eventBytes, arrivals);
    return s;
  });
  const tlsOpen = performance.now() - t;
  const tlsServer = tls.createServer({ key, cert, minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false });
  tlsServer.on('connection', (s: Socket) => s.setNoDelay(true));
  const tlsBase = await baselineServer(
    subscribers,
    tlsServer,
    (cb) => tlsServer.listen(0, '127.0.0.1', cb),
    () => connected(tls.connect({ port: (tlsServer.address() as net.AddressInfo).port, host: '127.0.0.1', ca, servername: 'localhost' }), 'secureConnect'),
    'secureConnection',
  );
  cleanup.add(() => tlsBase.close());
  for (const c of tlsBase.clients) countEvents(c, eventBytes, arrivals);
  results.push(
    await compareFanout(
      `deliver one event to ${int(subscribers)} subscribers, TLS on loopback TCP, raw clients`,
      'agent bus.publish',
      () => deliver(publish, arrivals, subscribers, 'agent, raw TLS subscribers'),
      'tls.Server writes',
      () =>
        deliver(() => {
          for (const s of tlsBase.accepted) s.write(eventText);
        }, arrivals, subscribers, 'tls.Server'),
    ),
  );
  for (const s of rawTls) s.destroy();
  await waitForNoConnections();
  await tlsBase.close();

  const setup =
    `${int(subscribers)} subscribers opened in ${(clientsOpen / 1000).toFixed(1)} s (LdmClient, Unix), ` +
    `${(rawOpen / 1000).toFixed(1)} s (raw, Unix), ${(tlsOpen / 1000).toFixed(1)} s (raw, TLS); event ${eventBytes} bytes`;
  return { results, setup };
}

// ---------------------------------------------------------------------------------------------

export async function run(): Promise<void> {
  const started = performance.now();
  const cleanup = new Cleanup();
  const dir = mkdtempSync(join(tmpdir(), 'ldm-bench-transport-'));
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  try {
    await measure(dir, cleanup);
  } finally {
    await cleanup.run();
  }
  console.log(`transport: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function measure(dir: string, cleanup: Cleanup): Promise<void> {
  const state = join(dir, 'var');
  const certs = join(dir, 'certs');
  const user = 'bench';
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  await promisify(execFile)(process.execPath, [AGENT_BIN, 'user', 'add', user, '--role', 'write', '--password-file', passwordFile, '--state', state]);

  const agent = await startChild(
    [AGENT_BIN, '--listen', '127.0.0.1:0', '--http', 'off', '--state', state, '--certs', certs],
    /XML interface listening on (\S+):(\d+)/,
    cleanup,
  );
  const agentPort = Number(agent.match[2]);
  const ca = readFileSync(join(certs, 'ca.pem'), 'utf8');

  // The answer's size, from the agent itself: the echo server answers with as many bytes.
  const probe = await rawAgentSession(agentPort, ca, { user, password });
  const answers: number[] = [];
  for (let i = 0; i < 3; i++) {
    probe.write(REQUEST);
    const text = await readUntil(probe, '</LDM_interface>');
    if (!text.includes('<status>success</status>')) throw new Error(`transport: list-domain failed: ${text}`);
    answers.push(Buffer.byteLength(text));
  }
  if (new Set(answers).size !== 1) throw new Error(`transport: answers of different sizes: ${answers.join(', ')}`);
  const answerBytes = answers[0]!;
  await closeSocket(probe, '</stream:stream>');

  const echo = await startChild(
    [ECHO_BIN, join(certs, 'server-key.pem'), join(certs, 'server.pem'), String(REQUEST_BYTES), String(answerBytes)],
    /TLS echo listening on (\S+):(\d+)/,
    cleanup,
  );
  const echoPort = Number(echo.match[2]);

  const sides: Side[] = [
    {
      name: 'agent, LdmClient',
      serverPid: agent.pid,
      open: async () =>
        ldmRpc(await LdmClient.connect({ host: '127.0.0.1', port: agentPort, auth: { kind: 'password', user, password }, ca, servername: 'localhost' })),
    },
    {
      name: 'agent, raw client',
      serverPid: agent.pid,
      open: async () => countingRpc(await rawAgentSession(agentPort, ca, { user, password }), answerBytes, '</stream:stream>'),
    },
    {
      name: 'TLS echo',
      serverPid: echo.pid,
      open: async () => countingRpc(await connected(tls.connect({ port: echoPort, host: '127.0.0.1', ca, servername: 'localhost' }), 'secureConnect'), answerBytes),
    },
  ];
  const conns: Rpc[][] = [];
  for (const side of sides) {
    const rpcs: Rpc[] = [];
    for (let i = 0; i < CONNECTIONS; i++) rpcs.push(await side.open());
    conns.push(rpcs);
  }
  const closeAll = async () => {
    await Promise.all(conns.flat().map((c) => c.close()));
    conns.length = 0;
  };
  cleanup.add(closeAll);

  const latency = await roundTrips(sides, conns.map((c) => c[0]!));
  const rates = await throughputs(sides, conns, THROUGHPUT_MS);
  await closeAll();
  await agent.stop();
  await echo.stop();

  const limit = openFileLimit();
  // Per fan-out step: subscriber and accepted socket on the agent's side, and the same on the baseline's.
  const fdsPerSubscriber = 4;
  let subscribers = WANTED_SUBSCRIBERS;
  if (Number.isFinite(limit) && limit < subscribers * fdsPerSubscriber + 100) {
    subscribers = Math.max(1, Math.floor((limit - 100) / fdsPerSubscriber));
    console.log(`transport: WARNING: open file limit (ulimit -n) is ${limit}: fan-out runs with ${subscribers} subscribers, not ${WANTED_SUBSCRIBERS}`);
  }
  const { results: fan, setup: fanSetup } = await fanout(certs, dir, subscribers, cleanup);

  // ── output ──
  const echoLatency = latency[2]!;
  const echoRate = rates[2]!;
  console.log(
    `transport: node ${process.version}, ${REQUESTS} sequential requests per side after ${WARMUP_REQUESTS} warm-up, ` +
      `${CONNECTIONS} connections for ${THROUGHPUT_ROUNDS} rounds of ${Math.round(THROUGHPUT_MS / THROUGHPUT_ROUNDS)} ms, fan-out median of ${FANOUT_REPEATS}; open file limit ${limit}`,
  );
  console.log(`request ${REQUEST_BYTES} bytes (list-domain), answer ${answerBytes} bytes; agent pid ${agent.pid}, echo pid ${echo.pid}`);
  console.log('');
  console.log('round trip, 1 connection, one request at a time:');
  const lw = Math.max(...latency.map((l) => l.side.name.length));
  for (const l of latency) {
    const s = l.samples;
    console.log(
      `  ${l.side.name.padEnd(lw)}  min ${us(s[0]!).padStart(8)}  p50 ${us(pct(s, 50)).padStart(8)}  p90 ${us(pct(s, 90)).padStart(8)}  ` +
        `p99 ${us(pct(s, 99)).padStart(8)}  max ${us(s[s.length - 1]!).padStart(9)}`,
    );
  }
  console.log(
    `throughput, ${CONNECTIONS} connections, closed loop, median of ${THROUGHPUT_ROUNDS} rounds ` +
      `(CPU over all rounds, in % of one core; the machine has ${cpus().length}, "machine" counts every process on it):`,
  );
  for (const r of rates) {
    console.log(
      `  ${r.side.name.padEnd(lw)}  ${int(r.rate).padStart(7)} req/s (rounds ${r.rounds.map(int).join(', ')})   ` +
        `CPU client ${pctOfCore(r.clientCpu, r.wall)}, server ${pctOfCore(r.serverCpu, r.wall)}, machine ${pctOfCore(r.machineCpu, r.wall)}`,
    );
  }
  const others = rates.map((r) => (r.machineCpu === undefined || r.serverCpu === undefined ? 0 : (100 * (r.machineCpu - r.clientCpu - r.serverCpu)) / r.wall));
  if (Math.max(...others) > 25) {
    console.log(
      `  note: other processes kept the machine busy meanwhile (up to ${Math.round(Math.max(...others))} % of a core beside client and server): ` +
        'the throughput figures are disturbed; compare ratios, or run again on a quiet machine',
    );
  }
  console.log('fan-out (median; "sync" = until publish/the write loop returned, "last" = until the last subscriber had all bytes):');
  for (const f of fan) {
    console.log(
      `  ${f.figure}\n` +
        `    ${f.oursName.padEnd(18)} sync ${msText(median(f.ours.map((d) => d.sync))).padStart(8)}  last ${msText(median(f.ours.map((d) => d.total))).padStart(8)}   ` +
        `rounds ${f.ours.map((d) => d.total.toFixed(1)).join(' ')}\n` +
        `    ${f.baseName.padEnd(18)} sync ${msText(median(f.base.map((d) => d.sync))).padStart(8)}  last ${msText(median(f.base.map((d) => d.total))).padStart(8)}   ` +
        `rounds ${f.base.map((d) => d.total.toFixed(1)).join(' ')}`,
    );
  }
  console.log(`  (${fanSetup})`);

  const rows: Row[] = [];
  for (const l of latency.slice(0, 2)) {
    for (const p of [50, 99]) {
      const ours = pct(l.samples, p);
      const base = pct(echoLatency.samples, p);
      rows.push({ figure: `round trip p${p}, list-domain, 1 connection (${l.side.name})`, value: us(ours), baseline: `${us(base)} (TLS echo, same bytes)`, ratio: ours / base });
      figure({ figure: rows.at(-1)!.figure, value: ours * 1000, unit: 'µs', baseline: 'TLS echo of the same bytes, a child process', baselineValue: base * 1000 });
    }
  }
  for (const r of rates.slice(0, 2)) {
    rows.push({
      figure: `throughput, list-domain, ${CONNECTIONS} connections (${r.side.name})`,
      value: `${int(r.rate)} req/s`,
      baseline: `${int(echoRate.rate)} req/s (TLS echo, ${CONNECTIONS} connections)`,
      ratio: echoRate.rate / r.rate,
    });
    figure({ figure: rows.at(-1)!.figure, value: r.rate, unit: 'req/s', baseline: `TLS echo, ${CONNECTIONS} connections`, baselineValue: echoRate.rate });
  }
  for (const f of fan) {
    const ours = median(f.ours.map((d) => d.total));
    const base = median(f.base.map((d) => d.total));
    rows.push({ figure: f.figure, value: `${msText(ours)} (${f.oursName})`, baseline: `${msText(base)} (${f.baseName})`, ratio: ours / base });
    figure({ figure: `${f.figure} (${f.oursName})`, value: ours, unit: 'ms', baseline: `${f.baseName} of the same bytes to as many sockets`, baselineValue: base });
  }
  console.log('');
  console.log('Markdown (figure | value | baseline (same run) | ratio):');
  console.log('');
  printMarkdown(rows);
  console.log('');
}
