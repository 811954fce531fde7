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
 *   npm run bench -- migration            (LDM_BENCH_MIGRATION_MIB=512 for a larger guest)
 *   node --import tsx bench/migration.ts receiver KEY CERT   (the child; prints its port)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureCerts } from '../agent/auth/certs.ts';
import type { Guest, PageData } from '../agent/hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { applyBatch, PageStreamDecoder, PageStreamEncoder, sendPass } from '../agent/migration/channel.ts';
import { RunningDigest } from '../agent/migration/digest.ts';
import { median } from './measure.ts';

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
  const mib = Number(process.env['LDM_BENCH_MIGRATION_MIB'] ?? 128);
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
    const mbps = (ms: number) => stream.length / 2 ** 20 / (ms / 1000);
    const raw = median(times.raw);
    const pagesMs = median(times.pages);
    const bare = median(times.nodigest);
    console.log(`guest: ${mib} MiB of random pages, ${(stream.length / 2 ** 20).toFixed(1)} MiB on the wire; median of ${ROUNDS} rounds`);
    console.log(`raw TLS, same bytes, two processes:     ${mbps(raw).toFixed(0)} MiB/s`);
    console.log(`page stream (read, frame, digest both sides): ${mbps(pagesMs).toFixed(0)} MiB/s   ratio ${(raw / pagesMs).toFixed(2)} of raw (goal >= 0.9)`);
    console.log(`page stream without the digests:        ${mbps(bare).toFixed(0)} MiB/s   ratio ${(raw / bare).toFixed(2)} of raw`);
    console.log(`cost of the digests: ${((pagesMs / bare - 1) * 100).toFixed(1)} % of the transfer time`);
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
