// Fuzzing the migration wire format: the page stream (agent/migration/channel.ts:
// frames, PageStreamDecoder) and the conversation around it (agent/migration/
// conversation.ts: parseSourceMessage, parseTargetMessage, the Conversation that
// reads a channel's socket).
//
// The decoder's promises (channel.ts, README.md "Frames"): from any split of any bytes
// it reports exactly the frames an independent reading of the format finds, in order,
// then either nothing more or one ChannelError (LDM_ERR_MIGRATION_FRAME, its `problem`
// naming the first rule broken), after which it reads nothing; a lie about a length,
// a count, an index or a kind is refused before it costs more than the frame bound.
// The parsers' promises: a message of the conversation's shape or a ProtocolError
// (LDM_ERR_MIGRATION_PROTOCOL), nothing else, and what they return survives the wire.
//
// Inputs are random, and mutations of real channel bytes: a real source's side of a
// migration (an offer built by the agent's checks from a real model, real pages of a
// simulated guest written by the real encoder) and the target's real answers.
//
// Every property has a fixed seed, printed in its name; FUZZ_SEED=<n> and FUZZ_SCALE=<k>
// explore further (test/helpers/hostile-fuzz.ts).
import t from 'tap';
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ErrorCodes } from '../agent/errors.ts';
import type { Guest } from '../agent/hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import {
  ChannelError,
  DEFAULT_MAX_FRAME,
  FRAME_CONTROL,
  FRAME_END,
  FRAME_HEADER,
  FRAME_PAGES,
  PageStreamDecoder,
  PageStreamEncoder,
  type FrameProblem,
} from '../agent/migration/channel.ts';
import { buildOffer, checkOffer } from '../agent/migration/checks.ts';
import { Conversation, parseSourceMessage, parseTargetMessage, ProtocolError, type SourceMessage, type TargetMessage } from '../agent/migration/conversation.ts';
import { RunningDigest } from '../agent/migration/digest.ts';
import { stateDirs } from './helpers/agent.ts';
import { inProcessModel } from './helpers/hostile-source.ts';
import { check, cutsArb, fuzzFile, InvariantError, sameJson, show, splitAt } from './helpers/hostile-fuzz.ts';
import { collector } from './helpers/collector.ts';

const F = fuzzFile(t, { seed: 0x3f2_0811, minCases: 10_000, fileMs: 40_000 });
const CHANNEL = 'migration-channel';
const CONV = 'migration-conversation';
const M = 2 ** 20;

// ---------------------------------------------------------------------------------------------
// A real migration's bytes: two models, a running guest, the agent's own offer and plan

const freshDir = stateDirs(t, 'ldm-fuzz-migration-');
const model = (name: string, hostid: string) => inProcessModel(t, freshDir, name, hostid);

const source = await model('alpha', '0x84f10001');
await source.ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 64 * M, variables: [['sim-working-set', '256K'], ['sim-fill', 'random'], ['sim-dirty-rate', '0']] });
await source.ldm.bindDomain('ldg1');
await source.ldm.startDomain('ldg1');
const guest: Guest = source.hypervisor.guest('ldg1')!;
await guest.whenFilled();
guest.suspend();
const built = buildOffer(source.ldm, source.hypervisor, 'ldg1', undefined, { dryRun: false, force: false });
if (!built.ok) throw new Error(built.reason);
const OFFER = built.offer;
const target = await model('beta', '0x84f20002');
const checked = checkOffer(target.ldm, OFFER);
if (!checked.ok) throw new Error(checked.reason);
const PLAN = checked.plan;
const GUEST_PAGES = guest.pages;

/** The source's side of a live migration, as the real encoder writes it (small batches: more frames). */
async function sourceBytes(): Promise<Buffer> {
  const { out, bytes } = collector();
  const enc = new PageStreamEncoder(out, { pagesPerBatch: 8 });
  const digest = new RunningDigest();
  const send = (m: SourceMessage) => enc.control(m);
  await send({ t: 'offer', id: 'fuzz-0001', offer: OFFER });
  await send({ t: 'prepare' });
  const touched = guest.touchedIndexes();
  // Pass 1: the touched pages and a few untouched ones (zero pages travel as an index only).
  for (const i of [...touched.subarray(0, 40), 1000, 2000, GUEST_PAGES - 1]) if (enc.addPage(guest, i, digest)) await enc.flush();
  await send({ t: 'progress', p: 42.5 });
  await send({ t: 'pass', n: 1 });
  await send({ t: 'ping' });
  for (const i of touched.subarray(0, 9)) if (enc.addPage(guest, i, digest)) await enc.flush();
  await send({ t: 'final', digest: digest.hex, runtime: guest.runtime() });
  await send({ t: 'resume' });
  await send({ t: 'cancel', reason: 'the operator cancelled' });
  await send({ t: 'settle', id: 'fuzz-0001', name: 'ldg1', uuid: OFFER.domain.uuid ?? '00000000-0000-0000-0000-000000000000' });
  await enc.end();
  await enc.drained();
  return bytes();
}

/** The target's answers, as the real encoder writes them. */
async function targetBytes(): Promise<Buffer> {
  const { out, bytes } = collector();
  const enc = new PageStreamEncoder(out);
  const answers: TargetMessage[] = [
    { t: 'checked', ok: true, plan: PLAN },
    { t: 'checked', ok: false, check: 'memory', reason: 'not enough free memory for ldg1' },
    { t: 'prepared' },
    { t: 'passed', n: 1 },
    { t: 'pong' },
    { t: 'verified', digest: '0123456789abcdef' },
    { t: 'mismatch', digest: 'fedcba9876543210' },
    { t: 'resumed', runningMs: 12.5 },
    { t: 'failed', reason: 'cannot reserve the domain' },
    { t: 'settled', runs: 'pending' },
  ];
  for (const a of answers) await enc.control(a);
  await enc.end();
  await enc.drained();
  return bytes();
}

const SOURCE_BYTES = await sourceBytes();
const TARGET_BYTES = await targetBytes();
const REAL: Buffer[] = [SOURCE_BYTES, TARGET_BYTES, SOURCE_BYTES.subarray(0, 3000)];

/** Where each frame of a well-formed stream starts (for lies told about one frame). */
function frameStarts(b: Buffer): number[] {
  const at: number[] = [];
  for (let off = 0; off + FRAME_HEADER <= b.length; off += FRAME_HEADER + b.readUInt32BE(off + 1)) at.push(off);
  return at;
}
const REAL_FRAMES = REAL.map(frameStarts);

// ---------------------------------------------------------------------------------------------
// An independent reading of the format (README.md "Frames"), to judge the decoder by

type FrameEvent = ['pages', [index: number, kind: number, hash: string | null][], number] | ['control', unknown] | ['end'];
interface Reading {
  events: FrameEvent[];
  problem?: FrameProblem;
}

const hashPage = (b: Uint8Array) => createHash('sha1').update(b).digest('base64');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function reference(bytes: Buffer, guestPages: number, maxFrame: number): Reading {
  const events: FrameEvent[] = [];
  const stop = (problem: FrameProblem): Reading => ({ events, problem });
  let off = 0;
  let ended = false;
  while (off < bytes.length) {
    if (ended) return stop('after-end');
    // A header that never comes whole is a stream cut inside a frame.
    if (bytes.length - off < FRAME_HEADER) return stop('truncated');
    const type = bytes[off]!;
    const length = bytes.readUInt32BE(off + 1);
    // The header alone decides these, before any payload is read.
    if (type !== FRAME_PAGES && type !== FRAME_CONTROL && type !== FRAME_END) return stop('unknown-type');
    if (length > maxFrame) return stop('too-large');
    if (type === FRAME_END && length !== 0) return stop('end-length');
    if (bytes.length - off - FRAME_HEADER < length) return stop('truncated');
    const payload = bytes.subarray(off + FRAME_HEADER, off + FRAME_HEADER + length);
    off += FRAME_HEADER + length;
    if (type === FRAME_END) {
      events.push(['end']);
      ended = true;
    } else if (type === FRAME_CONTROL) {
      // UTF-8 (a byte order mark is dropped, as WHATWG's decoder does), then one JSON value.
      if (!isUtf8(payload)) return stop('control');
      const text = payload.subarray(payload.subarray(0, 3).equals(BOM) ? 3 : 0).toString('utf8');
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return stop('control');
      }
      events.push(['control', value]);
    } else {
      // count u32, then exactly `count` entries filling the payload; a count it cannot hold is refused first.
      if (length < 4) return stop('batch-length');
      const count = payload.readUInt32BE(0);
      if (count * 5 > length - 4) return stop('batch-length');
      const pages: [number, number, string | null][] = [];
      let p = 4;
      for (let i = 0; i < count; i++) {
        if (p + 5 > length) return stop('batch-length');
        const index = payload.readUInt32BE(p);
        const kind = payload[p + 4]!;
        p += 5;
        if (index >= guestPages) return stop('page-index');
        if (kind === 0) pages.push([index, 0, null]);
        else if (kind === 1) {
          if (p + PAGE_SIZE > length) return stop('batch-length');
          pages.push([index, 1, hashPage(payload.subarray(p, p + PAGE_SIZE))]);
          p += PAGE_SIZE;
        } else return stop('page-kind');
      }
      if (p !== length) return stop('batch-length');
      events.push(['pages', pages, length]);
    }
  }
  return { events };
}

const PROBLEMS = new Set<FrameProblem>(['unknown-type', 'too-large', 'page-index', 'page-kind', 'batch-length', 'control', 'end-length', 'after-end', 'truncated']);

/** The decoder over `chunks`, then the end of the input: what it reported, and its one error. */
function decode(chunks: Buffer[], guestPages: number, maxFrame: number): Reading {
  const events: FrameEvent[] = [];
  const decoder = new PageStreamDecoder(
    { guestPages, maxFrameBytes: maxFrame },
    {
      pages: (batch) => {
        check(batch.pages.every((p) => p.bytes === null || p.bytes.length === PAGE_SIZE), 'a data page of the wrong size');
        events.push(['pages', batch.pages.map((p) => [p.index, p.bytes ? 1 : 0, p.bytes ? hashPage(p.bytes) : null]), batch.bytes]);
      },
      control: (m) => events.push(['control', m]),
      end: () => events.push(['end']),
    },
  );
  let failure: ChannelError | undefined;
  const expectFailure = (err: unknown) => {
    if (!(err instanceof ChannelError)) {
      const e = err as Error;
      throw new InvariantError(`the decoder threw ${e?.constructor?.name ?? typeof err}, not ChannelError: ${e?.stack ?? String(err)}`);
    }
    check(err.code === ErrorCodes.MIGRATION_FRAME && err.problem !== undefined && PROBLEMS.has(err.problem), `ChannelError ${err.code} ${String(err.problem)}`);
    check(err.message.length > 0, 'a ChannelError without a message');
    return err;
  };
  for (const chunk of chunks) {
    try {
      decoder.write(chunk);
    } catch (err) {
      failure = expectFailure(err);
      break;
    }
  }
  if (!failure) {
    try {
      decoder.finish();
    } catch (err) {
      failure = expectFailure(err);
    }
  }
  if (failure) {
    // It reads no more: every later call gives the same error, and nothing is reported.
    const n = events.length;
    for (const again of [() => decoder.write(Buffer.from([FRAME_END, 0, 0, 0, 0])), () => decoder.finish()]) {
      try {
        again();
        throw new InvariantError('the decoder went on after its error');
      } catch (err) {
        check(err === failure, 'a later call threw another error');
      }
    }
    check(events.length === n, 'the decoder reported a frame after its error');
    return { events, problem: failure.problem! };
  }
  return { events };
}

/** How the judged inputs ended: every problem must be reached, or the fuzzing proves little. */
const ENDINGS = new Map<string, number>();

function judge(bytes: Buffer, cuts: number[], guestPages: number, maxFrame: number): Reading {
  const want = reference(bytes, guestPages, maxFrame);
  ENDINGS.set(want.problem ?? 'clean', (ENDINGS.get(want.problem ?? 'clean') ?? 0) + 1);
  const whole = decode([bytes], guestPages, maxFrame);
  sameJson(whole, want, 'the decoder disagrees with the format');
  const cut = decode(splitAt(bytes, cuts), guestPages, maxFrame);
  sameJson(cut, want, `the decoder disagrees with the format when its input is cut at ${show(cuts)}`);
  return want;
}

// ---------------------------------------------------------------------------------------------
// Lies and mutations

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
/** Values a liar would try for a u32 field. */
const lie = (real: number, guestPages: number) =>
  fc.oneof(
    fc.constantFrom(0, 1, 4, 5, 0xffffffff, 0x80000000, DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME + 1, guestPages, guestPages - 1, PAGE_SIZE, PAGE_SIZE + 5),
    fc.integer({ min: -3, max: 3 }).map((d) => Math.max(0, real + d)),
    fc.nat({ max: 0xffffffff }),
  );

type Lie =
  | { what: 'length' | 'count' | 'index'; frame: number; entry: number; value: fc.Arbitrary<number> extends fc.Arbitrary<infer V> ? V : never }
  | { what: 'type' | 'kind'; frame: number; entry: number; byte: number }
  | { what: 'drop' | 'repeat' | 'truncate-frame'; frame: number; at: number }
  | { what: 'bytes'; at: number; bytes: Uint8Array };

const lieArb: fc.Arbitrary<Lie> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ what: fc.constantFrom('length' as const, 'count' as const, 'index' as const), frame: fc.nat(), entry: fc.nat(), value: lie(8, GUEST_PAGES) }) },
  fc.record({ what: fc.constantFrom('type' as const, 'kind' as const), frame: fc.nat(), entry: fc.nat(), byte: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 255), fc.nat({ max: 255 })) }),
  fc.record({ what: fc.constantFrom('drop' as const, 'repeat' as const, 'truncate-frame' as const), frame: fc.nat(), at: fc.nat() }),
  fc.record({ what: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
);

/** Tell one lie about one frame of `b` (a well-formed stream whose frames start at `starts`). */
function tell(b: Buffer, starts: number[], l: Lie): Buffer {
  if (l.what === 'bytes') {
    const at = l.at % (b.length + 1);
    return Buffer.concat([b.subarray(0, at), l.bytes, b.subarray(at)]);
  }
  if (starts.length === 0) return b;
  const at = starts[l.frame % starts.length]!;
  // (A length lied about before may point past the stream.)
  const end = Math.min(b.length, at + FRAME_HEADER + b.readUInt32BE(at + 1));
  const c = Buffer.from(b);
  switch (l.what) {
    case 'length':
      u32(l.value).copy(c, at + 1);
      return c;
    case 'type':
      c[at] = l.byte;
      return c;
    case 'drop':
      return Buffer.concat([b.subarray(0, at), b.subarray(end)]);
    case 'repeat':
      return Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
    case 'truncate-frame':
      return b.subarray(0, at + (l.at % (end - at)));
    case 'count':
    case 'index':
    case 'kind': {
      if (c[at] !== FRAME_PAGES || end - at < FRAME_HEADER + 4) return c;
      const value = 'value' in l ? l.value : 0;
      if (l.what === 'count') {
        u32(value).copy(c, at + FRAME_HEADER);
        return c;
      }
      // Walk to entry number `entry` (modulo the count) of the real batch.
      const count = c.readUInt32BE(at + FRAME_HEADER);
      if (count === 0) return c;
      let p = at + FRAME_HEADER + 4;
      // (A count lied about before is no guide: the walk stops at the frame's end.)
      for (let i = 0; i < l.entry % count && p + 5 <= end; i++) p += 5 + (c[p + 4] === 1 ? PAGE_SIZE : 0);
      if (p + 5 > end) return c;
      if (l.what === 'kind') c[p + 4] = l.byte;
      else u32(value).copy(c, p);
      return c;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// [migration-channel] properties

t.test('[migration-channel] the real streams read as written, from every cut of their first frames and from 1-byte reads', async (t) => {
  let cases = 0;
  for (const bytes of [SOURCE_BYTES, TARGET_BYTES]) {
    const want = reference(bytes, GUEST_PAGES, DEFAULT_MAX_FRAME);
    t.equal(want.problem, undefined, 'the real stream is well-formed');
    t.ok(want.events.at(-1)?.[0] === 'end', 'it ends with END');
    // Every cut inside its first 400 bytes (headers, control frames, the first batch's start), then 1-byte reads.
    for (let k = 1; k < Math.min(400, bytes.length); k++) {
      sameJson(decode([bytes.subarray(0, k), bytes.subarray(k)], GUEST_PAGES, DEFAULT_MAX_FRAME), want, `cut at ${k}`);
      cases++;
    }
    sameJson(decode(Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)), GUEST_PAGES, DEFAULT_MAX_FRAME), want, '1-byte reads');
    cases++;
  }
  F.count(CHANNEL, cases);
  const controls = reference(SOURCE_BYTES, GUEST_PAGES, DEFAULT_MAX_FRAME).events.filter((e) => e[0] === 'control').map((e) => (e[1] as { t: string }).t);
  t.same(controls, ['offer', 'prepare', 'progress', 'pass', 'ping', 'final', 'resume', 'cancel', 'settle'], 'the source stream carries every source message');
});

const bytesArb = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  // Plausible frames: a valid type and a small length, then anything.
  fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 0, 9), fc.nat({ max: 64 }), fc.uint8Array({ maxLength: 64 })), { maxLength: 6 }).map((frames) =>
    Buffer.concat(frames.flatMap(([type, len, body]) => [Buffer.from([type]), u32(len), Buffer.from(body)])),
  ),
  // Control frames of random text: JSON or not, UTF-8 or not.
  fc.array(fc.oneof(fc.json(), fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1'))), { maxLength: 5 }).map((texts) =>
    Buffer.concat(texts.flatMap((s) => {
      const body = Buffer.from(s, 'utf8');
      return [Buffer.from([FRAME_CONTROL]), u32(body.length), body];
    })),
  ),
);
const pagesArb = fc.constantFrom(0, 1, 7, GUEST_PAGES, 0xffffffff);
const maxFrameArb = fc.constantFrom(DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME, 64, 1000, PAGE_SIZE + 9, 0);

F.fuzz(CHANNEL, '(f1) random bytes: the frames the format finds, then one ChannelError naming the rule broken; the same for every cut', 1, 4000,
  fc.tuple(bytesArb, cutsArb, pagesArb, maxFrameArb),
  ([bytes, cuts, pages, maxFrame]) => void judge(bytes, cuts, pages, maxFrame),
);

F.fuzz(CHANNEL, '(f2) real streams with lies about lengths, counts, indexes, kinds and types, frames dropped, repeated or cut', 2, 3000,
  fc.record({ stream: fc.nat({ max: REAL.length - 1 }), lies: fc.array(lieArb, { minLength: 1, maxLength: 3 }), cuts: cutsArb, pages: fc.constantFrom(GUEST_PAGES, GUEST_PAGES, 1000), maxFrame: fc.constantFrom(DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME, 40_000) }),
  ({ stream, lies, cuts, pages, maxFrame }) => {
    // Each lie is told about the stream as the previous ones left it (frames found anew).
    const bytes = lies.reduce((b, l) => tell(b, frameStarts(b), l), REAL[stream]!);
    judge(bytes, cuts, pages, maxFrame);
  },
  { heapBytes: 32 * M },
);

t.test('[migration-channel] (f1, f2) reached every frame problem, and clean ends', async (t) => {
  for (const p of [...PROBLEMS, 'clean']) t.ok((ENDINGS.get(p) ?? 0) > 0, `${p}: ${ENDINGS.get(p) ?? 0} inputs`);
});

// Lies as far as they go: every frame's length field set to the bound, one past it, and all ones.
t.test('[migration-channel] a length that lies costs at most the frame bound: refused from its header past it, never buffered beyond it', async (t) => {
  let cases = 0;
  for (const [i, at] of REAL_FRAMES[0]!.entries()) {
    for (const value of [DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME + 1, 0xffffffff]) {
      const lied = tell(SOURCE_BYTES, REAL_FRAMES[0]!, { what: 'length', frame: i, entry: 0, value });
      const r = judge(lied, [at + 3, at + 5], GUEST_PAGES, DEFAULT_MAX_FRAME);
      if (value > DEFAULT_MAX_FRAME && lied[at] !== FRAME_END) t.equal(r.problem, 'too-large', `frame ${i} claiming ${value} bytes: refused`);
      cases++;
    }
  }
  F.count(CHANNEL, cases);
});

// ---------------------------------------------------------------------------------------------
// [migration-conversation] the messages' shapes

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown, max: number) => typeof v === 'string' && v.length >= 1 && v.length <= max;
const HEX16 = /^[0-9a-f]{16}$/;

/** What each message returned by the parsers must be, read from conversation.ts's message table. */
const SOURCE_SHAPES: Record<string, (m: Json) => boolean> = {
  offer: (m) => text(m['id'], 64) && isObj(m['offer']),
  prepare: () => true,
  resume: () => true,
  ping: () => true,
  pass: (m) => Number.isSafeInteger(m['n']),
  progress: (m) => typeof m['p'] === 'number' && Number.isFinite(m['p']),
  final: (m) => typeof m['digest'] === 'string' && HEX16.test(m['digest']) && (m['runtime'] === undefined || isObj(m['runtime'])),
  cancel: (m) => text(m['reason'], 4096),
  settle: (m) => text(m['id'], 64) && text(m['name'], 64) && text(m['uuid'], 64),
};
const SOURCE_KEYS: Record<string, string[]> = { offer: ['id', 'offer'], pass: ['n'], progress: ['p'], final: ['digest', 'runtime'], cancel: ['reason'], settle: ['id', 'name', 'uuid'] };
const TARGET_SHAPES: Record<string, (m: Json) => boolean> = {
  checked: (m) => (m['ok'] === true ? isObj(m['plan']) : m['ok'] === false && text(m['reason'], 4096) && text(m['check'], 64)),
  prepared: () => true,
  pong: () => true,
  resumed: (m) => typeof m['runningMs'] === 'number' && Number.isFinite(m['runningMs']) && m['runningMs'] >= 0,
  passed: (m) => Number.isSafeInteger(m['n']),
  failed: (m) => text(m['reason'], 4096),
  verified: (m) => typeof m['digest'] === 'string' && HEX16.test(m['digest']),
  mismatch: (m) => typeof m['digest'] === 'string' && HEX16.test(m['digest']),
  settled: (m) => m['runs'] === 'yes' || m['runs'] === 'no' || m['runs'] === 'pending',
};
const TARGET_KEYS: Record<string, string[]> = { checked: ['ok', 'plan', 'check', 'reason'], resumed: ['runningMs'], passed: ['n'], failed: ['reason'], verified: ['digest'], mismatch: ['digest'], settled: ['runs'] };

/** A parser's answer to `v`: a message of its shape, or a ProtocolError. */
function parseWith(side: 'source' | 'target', v: unknown): Json | undefined {
  let m: unknown;
  try {
    m = side === 'source' ? parseSourceMessage(v) : parseTargetMessage(v);
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      const e = err as Error;
      throw new InvariantError(`parse${side}Message threw ${e?.constructor?.name ?? typeof err}, not ProtocolError: ${e?.stack ?? String(err)}`);
    }
    check(err.code === ErrorCodes.MIGRATION_PROTOCOL && err.message.length > 0 && err.message.length < 400, `ProtocolError ${err.code}: ${err.message.slice(0, 500)}`);
    return undefined;
  }
  check(isObj(m) && typeof m['t'] === 'string', `parse${side}Message returned ${show(m)}`);
  const shapes = side === 'source' ? SOURCE_SHAPES : TARGET_SHAPES;
  const keys = side === 'source' ? SOURCE_KEYS : TARGET_KEYS;
  const t = m['t'] as string;
  check(Object.hasOwn(shapes, t), `a message of unknown type "${t}" passed`);
  check(shapes[t]!(m), `a malformed "${t}" passed: ${show(m).slice(0, 400)}`);
  const extra = Object.keys(m).filter((k) => k !== 't' && !(keys[t] ?? []).includes(k));
  check(extra.length === 0, `"${t}" came back with keys it does not have: ${extra.join(', ')}`);
  // What was accepted survives the wire: sent again, it parses to itself.
  sameJson(side === 'source' ? parseSourceMessage(JSON.parse(JSON.stringify(m))) : parseTargetMessage(JSON.parse(JSON.stringify(m))), m, 'not stable through JSON');
  return m;
}

const TYPES = [...Object.keys(SOURCE_SHAPES), ...Object.keys(TARGET_SHAPES), 'launch', '', 'OFFER', '__proto__', 'constructor', 'toString'];
const fieldValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, '', 'x', '0123456789abcdef', '0123456789ABCDEF', 'yes', 'no', 'pending', [], {}, 'a'.repeat(65), 'a'.repeat(4097)),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 80 }),
);
const FIELDS = ['t', 'id', 'offer', 'n', 'p', 'digest', 'runtime', 'reason', 'name', 'uuid', 'ok', 'plan', 'check', 'runningMs', 'runs', '__proto__', 'constructor'];
const messageLike = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.anything({ maxDepth: 2 }),
  fc.tuple(fc.constantFrom(...TYPES), fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 5 })).map(([t, rest]) => ({ ...rest, t })),
  // Through JSON.parse, as the wire gives them: "__proto__" is then an own key.
  fc.tuple(fc.constantFrom(...TYPES), fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 5 })).map(([t, rest]) => JSON.parse(JSON.stringify({ t, ...rest }).replace('"constructor"', '"__proto__"')) as unknown),
);

F.fuzz(CONV, '(c1) any JSON-ish value: a message of the conversation\'s shape or a ProtocolError, stable through JSON', 11, 6000, messageLike, (v) => {
  parseWith('source', v);
  parseWith('target', v);
  check(({} as Json)['polluted'] === undefined && Object.getPrototypeOf({}) === Object.prototype, 'Object.prototype was changed');
});

/** The real messages of both sides, as the encoder put them on the wire. */
const REAL_MESSAGES = [SOURCE_BYTES, TARGET_BYTES].flatMap((b) =>
  reference(b, GUEST_PAGES, DEFAULT_MAX_FRAME).events.filter((e) => e[0] === 'control').map((e) => e[1] as Json),
);

type FieldMutation = { path: number; op: 'delete' | 'set' | 'wrap'; value: unknown };
const fieldMutation = fc.record({ path: fc.nat(), op: fc.constantFrom('delete' as const, 'set' as const, 'set' as const, 'wrap' as const), value: fieldValue });

/** Every [object, key] inside `v` (depth first), to mutate one of them. */
function slots(v: unknown, out: [Json | unknown[], string | number][] = []): [Json | unknown[], string | number][] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (isObj(v)) for (const k of Object.keys(v)) out.push([v, k]), slots(v[k], out);
  return out;
}

function mutateMessage(m: Json, muts: FieldMutation[]): Json {
  const c = JSON.parse(JSON.stringify(m)) as Json;
  for (const mu of muts) {
    const all = slots(c);
    if (all.length === 0) break;
    const [obj, key] = all[mu.path % all.length]!;
    const o = obj as Record<string | number, unknown>;
    if (mu.op === 'delete') {
      if (Array.isArray(obj)) obj.splice(key as number, 1);
      else delete o[key];
    } else if (mu.op === 'set') o[key] = mu.value;
    else o[key] = [o[key]];
  }
  return c;
}

F.fuzz(CONV, '(c2) real messages (the agent\'s own offer, plan, digests) with fields deleted, retyped or wrapped', 12, 4000,
  fc.tuple(fc.nat({ max: REAL_MESSAGES.length - 1 }), fc.array(fieldMutation, { minLength: 1, maxLength: 4 })),
  ([i, muts]) => {
    const m = mutateMessage(REAL_MESSAGES[i]!, muts);
    parseWith('source', m);
    parseWith('target', m);
  },
);

t.test('[migration-conversation] the real messages all parse, each on its own side', async (t) => {
  for (const m of REAL_MESSAGES) {
    const side = Object.hasOwn(SOURCE_SHAPES, m['t'] as string) ? 'source' : 'target';
    t.ok(parseWith(side, m), `${side}: ${m['t'] as string}`);
  }
  F.count(CONV, REAL_MESSAGES.length);
});

// ---------------------------------------------------------------------------------------------
// [migration-conversation] a Conversation reading hostile bytes from its socket

/** A socket the test writes into: what the Conversation writes is kept. */
class Wire extends Duplex {
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    cb();
  }
}
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const C3_ENDINGS = new Map<string, number>();
/** Control messages a side may send before the other reads (conversation.ts MAX_INBOX). */
const INBOX = 16;

F.fuzzAsync(CONV, '(c3) a Conversation fed real, lying or random bytes in any reads: the messages in order, then one ChannelError or ProtocolError', 13, 1500,
  fc.record({
    bytes: fc.oneof(
      fc.record({ stream: fc.nat({ max: REAL.length - 1 }), lies: fc.array(lieArb, { maxLength: 2 }) }).map(({ stream, lies }) => lies.reduce((b, l) => tell(b, frameStarts(b), l), REAL[stream]!)),
      bytesArb,
      // A burst of messages nobody answers: past the inbox bound.
      fc.integer({ min: 10, max: 40 }).map((n) => Buffer.concat(Array.from({ length: n }, () => Buffer.concat([Buffer.from([FRAME_CONTROL]), u32(12), Buffer.from('{"t":"ping"}')])))),
    ),
    cuts: cutsArb,
    receiving: fc.boolean(),
    rest: fc.nat({ max: 64 }),
  }),
  async ({ bytes, cuts, receiving, rest }) => {
    const socket = new Wire();
    // The first bytes may come with the switch (`rest`), the others from the socket.
    const first = bytes.subarray(0, Math.min(rest, bytes.length));
    const conv = new Conversation(socket as unknown as Socket, first);
    const pages: number[] = [];
    if (receiving) {
      conv.decoderOptions.guestPages = GUEST_PAGES;
      conv.onPages = (batch) => pages.push(batch.pages.length);
    }
    for (const chunk of splitAt(bytes.subarray(first.length), cuts)) {
      try {
        socket.push(chunk);
      } catch (err) {
        throw new InvariantError(`reading a chunk threw out of the socket: ${(err as Error).stack}`);
      }
      await tick();
    }
    socket.destroy();
    await tick();
    const got: unknown[] = [];
    let failure: unknown;
    for (;;) {
      try {
        got.push(await conv.receive(60_000, 'fuzz', () => new Error('no timer may run here')));
      } catch (err) {
        failure = err;
        break;
      }
    }
    // What it must have given: the reference's frames, up to the first that ends the conversation.
    const want = reference(bytes, receiving ? GUEST_PAGES : 0, DEFAULT_MAX_FRAME);
    const messages: unknown[] = [];
    const batches: number[] = [];
    let ended: string | undefined;
    for (const e of want.events) {
      if (e[0] === 'control') {
        if (messages.length === INBOX) {
          ended = 'inbox';
          break;
        }
        messages.push(e[1]);
      } else if (e[0] === 'pages') {
        if (!receiving) {
          ended = 'pages-early';
          break;
        }
        batches.push(e[1].length);
      } else {
        ended = 'end';
        break;
      }
    }
    // A socket closed inside a frame is a closed channel (the Conversation does not wait for more).
    ended ??= want.problem === 'truncated' ? 'closed' : want.problem ?? 'closed';
    C3_ENDINGS.set(ended, (C3_ENDINGS.get(ended) ?? 0) + 1);
    sameJson(got, messages, 'the messages received are not the control frames sent');
    sameJson(pages, batches, 'the page batches handed on are not the ones sent');
    check(failure === conv.closedBy, 'receive rejected with another error than the one the conversation ended with');
    if (ended === 'inbox') check(failure instanceof ProtocolError, `past ${INBOX} unanswered messages: ${show(failure)}`);
    else if (ended === 'closed' || ended === 'end') check(failure instanceof ChannelError && failure.code === ErrorCodes.MIGRATION_CHANNEL, `a closed channel: ${String(failure)}`);
    else if (ended === 'pages-early') check(failure instanceof ChannelError, `pages before the domain: ${String(failure)}`);
    else check(failure instanceof ChannelError && failure.problem === ended, `expected the frame problem ${ended}, got ${String(failure)} (${(failure as ChannelError)?.problem})`);
  },
  { caseMs: 1000, heapBytes: 32 * M },
);

t.test('[migration-conversation] (c3) reached every way a conversation ends', async (t) => {
  // ('pages-early' needs an empty batch before the domain exists: rare, and not required.)
  for (const e of ['inbox', 'closed', 'end', 'page-index', 'batch-length', 'control', 'unknown-type']) t.ok((C3_ENDINGS.get(e) ?? 0) > 0, `${e}: ${C3_ENDINGS.get(e) ?? 0} cases`);
});

F.finish();
