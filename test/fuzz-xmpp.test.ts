// Fuzzing the XMPP side of the wire: the stream reader (agent/xmpp/stream.ts), which
// turns a socket's bytes into stanzas on both ends (the agent's connections and
// LdmClient), and the SASL exchange (agent/xmpp/sasl.ts and the login states of
// agent/xmpp/connection.ts).
//
// The reader's promises: whatever the bytes, it delivers elements or throws XmlError
// (LDM_ERR_XML_*), never anything else; how the bytes are cut into reads changes
// nothing it reports (the elements, the error, where a binary channel's bytes begin);
// pausing it only delays; a stream generated well-formed comes out as generated.
// The login's promises: no success without a valid credential, no more failures than
// the attempts allowed, no internal error whatever the peer sends, an output that is
// always a well-formed stream, and a clean close.
//
// Inputs are random, generated, and mutations of a real exchange: LdmClient's bytes as
// a server received them (captured at the start of this file over a Unix socket, real
// requests from xml-examples/ and a real channel switch with real page frames), and the
// agent's own writers (agent/xmpp/wire.ts) for the server's side.
//
// Every property has a fixed seed, printed in its name; FUZZ_SEED=<n> and FUZZ_SCALE=<k>
// explore further (test/helpers/hostile-fuzz.ts).
//
// One finding (W1 below), fixed and kept as a regression: invalid UTF-8 read together with a
// channel switch could silently cost the channel its first two bytes.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { XmlError } from '../agent/errors.ts';
import { channelMessages } from '../agent/messages.ts';
import { EventBus } from '../agent/events/bus.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { createLogger } from '../agent/log.ts';
import type { Manager, Principal } from '../agent/manager/manager.ts';
import { PageStreamEncoder } from '../agent/migration/channel.ts';
import { success } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { DEFAULT_XML_LIMITS, PRE_AUTH_LIMITS, xmlLimits, type XmlLimits } from '../agent/xml/limits.ts';
import { overallFailure } from '../agent/xml/respond.ts';
import { attr, parseXml, type XmlElement } from '../agent/xml/tree.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { CHANNEL_ACTION, Connection, type ConnectionDeps } from '../agent/xmpp/connection.ts';
import { decodeExternal, decodePlain, encodePlain } from '../agent/xmpp/sasl.ts';
import { StreamReader } from '../agent/xmpp/stream.ts';
import * as wire from '../agent/xmpp/wire.ts';
import { check, cutsArb, fuzzFile, InvariantError, sameJson, show, splitAt } from './helpers/hostile-fuzz.ts';

const F = fuzzFile(t, { seed: 0x5a5_1101, minCases: 10_000, fileMs: 40_000 });
const STREAM = 'xmpp-stream';
const SASL = 'sasl';

// ---------------------------------------------------------------------------------------------
// Real frames and a real exchange

const hv = new SimHypervisor();
t.teardown(() => hv.close());

/** Real page frames: a few data and zero pages of a guest, a control message, END. */
async function realFrames(): Promise<Buffer> {
  const guest = hv.create({ name: 'fuzz-frames', memoryBytes: 64 * PAGE_SIZE });
  const pages = Array.from({ length: 6 }, (_, i) => ({ index: i * 3, bytes: i % 3 === 2 ? null : Buffer.alloc(PAGE_SIZE, 0x3c + i) }));
  guest.writePages(pages);
  const parts: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  const enc = new PageStreamEncoder(out, { pagesPerBatch: 4 });
  for (const p of pages) if (enc.addPage(guest, p.index)) await enc.flush();
  await enc.control({ t: 'final', digest: '0123456789abcdef' });
  await enc.end();
  await enc.drained();
  await guest.destroy();
  return Buffer.concat(parts);
}
const FRAMES = await realFrames();

const example = (dir: string, name: string) => readFileSync(new URL(`../xml-examples/${dir}/${name}`, import.meta.url), 'utf8');
const EVENT = example('events', 'migration-progress.xml');

function responseFor(el: XmlElement): string {
  const action = el.children.find((c) => c.local === 'cmd')?.children.find((c) => c.local === 'action')?.text.trim() ?? '';
  for (const name of [`${action}.success.xml`, 'several-commands.xml']) {
    if (existsSync(new URL(`../xml-examples/responses/${name}`, import.meta.url))) return example('responses', name);
  }
  return encodeDocument(overallFailure('no example'));
}

const asksForChannel = (el: XmlElement) =>
  el.local === 'ldm_interface' && el.children.some((c) => c.local === 'cmd' && c.children.some((a) => a.local === 'action' && a.text.trim() === CHANNEL_ACTION));

interface Exchange {
  /** What LdmClient wrote, as the server read it, and where its binary tail begins. */
  client: Buffer;
  clientTail: number;
  /** What the server wrote (the agent's writers), and where its binary tail begins. */
  server: Buffer;
  serverTail: number;
}

/**
 * A real LdmClient session against a small server on a Unix socket (no TLS: on the
 * local socket TLS is optional, so the bytes are the stream itself): the header, the
 * resource binding, the requests (as files, `<?xml ...?>` first), an event, then the
 * switch to the migration channel with the first frames in the same write.
 */
async function capture(requests: string[]): Promise<Exchange> {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-fuzz-xmpp-'));
  const path = join(dir, 'capture.sock');
  const fromClient: Buffer[] = [];
  const fromServer: Buffer[] = [];
  let serverTail = -1;
  const server = net.createServer((s) => {
    const say = (b: Buffer | string) => {
      const buf = Buffer.from(b);
      fromServer.push(buf);
      s.write(buf);
    };
    let answered = 0;
    const reader = new StreamReader(DEFAULT_XML_LIMITS, {
      header: () => {
        say(wire.streamHeader('fuzz0001', 'capture-host'));
        say(wire.features({ starttls: 'optional', bind: true }));
      },
      element: (el, _bytes, rest) => {
        if (rest !== undefined) {
          const cmd = { action: CHANNEL_ACTION, options: [], arguments: ['migration'], data: [], response: success() };
          say(encodeDocument({ root: 'LDM_interface', version: '1.3', commands: [cmd], response: success() }, { indent: false }));
          serverTail = fromServer.reduce((n, b) => n + b.length, 0);
          say(FRAMES);
          return;
        }
        if (el.local === 'iq') return say(wire.bindResult(attr(el, 'id') ?? '', 'local@capture-host/ldm'));
        if (el.local === 'ldm_interface') {
          if (answered++ === 1) say(EVENT);
          say(responseFor(el));
        }
      },
      last: asksForChannel,
      end: () => {},
    });
    s.on('data', (c: Buffer) => {
      fromClient.push(Buffer.from(c));
      reader.write(c);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const client = await LdmClient.connect({ path, auth: { kind: 'local' }, tls: false, timeoutMs: 10_000 });
    for (const name of requests) await client.request(example('requests', `${name}.xml`));
    const early = FRAMES.subarray(0, 700);
    const socket = await client.openChannel('migration', early);
    // The server's frames follow its answer: wait for them, so the capture is complete.
    await new Promise<void>((resolve) => {
      let got = 0;
      socket.on('data', (d: Buffer) => (got += d.length) >= FRAMES.length && resolve());
      socket.resume();
    });
    socket.destroy();
    const clientBytes = Buffer.concat(fromClient);
    return { client: clientBytes, clientTail: clientBytes.length - early.length, server: Buffer.concat(fromServer), serverTail };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const FULL = await capture(['list-domain', 'add-domain', 'add-vcpu', 'libldom-reg-domain-events', 'reg-progress-events', 'migrate-domain', 'several-commands', 'list-migrations', 'set-memory']);
const SHORT = await capture(['libldom-reg-domain-events']);

/** The client's stream header as it wrote it (its first element). */
const CLIENT_HEADER = FULL.client.subarray(0, FULL.client.indexOf('>', FULL.client.indexOf('<stream:stream')) + 1).toString('utf8');
const STARTTLS = `<starttls xmlns='${wire.NS.tls}'/>`;
const authElement = (mechanism: string, payload: string) => `<auth xmlns='${wire.NS.sasl}' mechanism='${mechanism}'>${payload}</auth>`;
const PASSWORD = 'right-Passw0rd';

/** The client's streams before login, as LdmClient writes them (client.ts handshake). */
const CLIENT_STREAMS: Buffer[] = [
  Buffer.from(CLIENT_HEADER + STARTTLS),
  Buffer.from(CLIENT_HEADER + authElement('PLAIN', encodePlain('admin', PASSWORD))),
  Buffer.from(CLIENT_HEADER + authElement('EXTERNAL', '=')),
  FULL.client,
  SHORT.client,
];
/** The server's streams before login, from the agent's writers. */
const SERVER_STREAMS: Buffer[] = [
  Buffer.from(wire.streamHeader('a1', 'host') + wire.features({ starttls: 'required' }) + wire.proceed()),
  Buffer.from(wire.streamHeader('a2', 'host') + wire.features({ mechanisms: ['EXTERNAL', 'PLAIN'] }) + wire.saslFailure('not-authorized', 'bad <password> & "more"') + wire.saslSuccess()),
  Buffer.from(wire.streamHeader('a3', 'host', 'me') + wire.features({ bind: true }) + wire.bindResult('b1', 'admin@host/ldm') + wire.iqError('x', 'bad-request') + wire.streamError('policy-violation', 'too slow')),
  FULL.server,
  SHORT.server,
];

t.test('the captured exchange is what the fuzzing mutates: whole, with its binary tails where expected', async (t) => {
  t.ok(FULL.client.includes('<?xml version="1.0"?>'), 'the client sent the requests as files, declarations included');
  t.equal(Buffer.compare(FULL.client.subarray(FULL.clientTail), FRAMES.subarray(0, 700)), 0, 'the client stream ends in the frames sent with the switch');
  t.equal(Buffer.compare(FULL.server.subarray(FULL.serverTail), FRAMES), 0, 'the server stream ends in its frames');
  const client = readStream([FULL.client], { claim: asksForChannel });
  t.equal(client.error, undefined, 'the client stream reads without error');
  t.equal(client.events.filter((e) => e[0] === 'element').length, 1 + 9 + 1, 'iq, nine requests, the switch');
  t.equal(client.tail?.length, FRAMES.subarray(0, 700).length, 'the switch claims the frames after it');
});

// ---------------------------------------------------------------------------------------------
// The reader's transcript: what it reports, whatever the cut of the input

type Event = [kind: string, ...rest: unknown[]];
interface Transcript {
  events: Event[];
  /** The XmlError's code and message, when the stream broke. */
  error?: [string, string];
  /** The bytes after the claimed element: its `rest`, then every later read. */
  tail?: Buffer;
}

interface ReadOptions {
  limits?: XmlLimits;
  /** The `last` handler: the element that ends the XML stream. */
  claim?: (el: XmlElement) => boolean;
  /** Pause in the element handler after these elements (by count), resume before these reads. */
  pauseAfter?: ReadonlySet<number>;
  resumeBefore?: ReadonlySet<number>;
}

/** Feed `chunks` in order; only XmlError may come out. */
function readStream(chunks: Buffer[], o: ReadOptions = {}): Transcript {
  const events: Event[] = [];
  let tailParts: Buffer[] | undefined;
  let elements = 0;
  const reader: StreamReader = new StreamReader(o.limits ?? DEFAULT_XML_LIMITS, {
    header: (h) => events.push(['header', h.name, h.attrs, h.again]),
    admit: (name) => events.push(['admit', name]),
    element: (el, bytes, rest) => {
      check(Number.isInteger(bytes) && bytes >= 0, `bytes ${bytes}`);
      events.push(['element', el]);
      if (rest !== undefined) {
        check(tailParts === undefined, 'two elements claimed as the last');
        tailParts = [Buffer.from(rest)];
      }
      if (o.pauseAfter?.has(++elements)) reader.pause();
    },
    last: o.claim,
    end: () => events.push(['end']),
  });
  const result: Transcript = { events };
  for (let i = 0; i < chunks.length; i++) {
    if (o.resumeBefore?.has(i) && reader.paused) reader.resume();
    // After the claim the reader parses nothing: later reads belong to the channel.
    if (tailParts) {
      tailParts.push(chunks[i]!);
      continue;
    }
    try {
      reader.write(chunks[i]!);
    } catch (err) {
      if (!(err instanceof XmlError)) {
        const e = err as Error;
        throw new InvariantError(`the reader threw ${e?.constructor?.name ?? typeof err}, not XmlError: ${e?.stack ?? String(err)}`);
      }
      check(/^LDM_ERR_XML_/.test(err.code), `XmlError code ${err.code}`);
      check(err.message.length > 0, 'an XmlError without a message');
      check(err.line === undefined || (Number.isInteger(err.line) && err.line >= 1), `XmlError line ${String(err.line)}`);
      result.error = [err.code, err.message];
      break;
    }
  }
  // A handler may pause again while what waited is delivered: resume until nothing waits.
  while (reader.paused && !result.error) reader.resume();
  if (tailParts) result.tail = Buffer.concat(tailParts);
  return result;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const isUtf8 = (b: Uint8Array) => {
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
};
const BAD_UTF8_SWITCH = channelMessages.switchBadUtf8();

/** The transcript of the whole input must be that of any cut of it. */
function sameAcrossCuts(bytes: Buffer, cuts: number[], o: ReadOptions = {}): Transcript {
  const whole = readStream([bytes], o);
  const cut = readStream(splitAt(bytes, cuts), o);
  // By design the reader refuses a channel switch read together with invalid UTF-8 (it cannot
  // tell which bytes follow the switch); in another read the same bytes do not hinder the switch.
  if (whole.error?.[1] === BAD_UTF8_SWITCH || cut.error?.[1] === BAD_UTF8_SWITCH) {
    check(!isUtf8(bytes), `a switch refused for invalid UTF-8 in valid UTF-8 input`);
    return whole;
  }
  sameJson(cut.events, whole.events, `events differ when the input is cut at ${show(cuts)}`);
  // The code only: where a stream breaks in two ways at once (text outside the root and a
  // disallowed character, say) which one saxes names first depends on where its input ends.
  sameJson(cut.error?.[0], whole.error?.[0], `the error differs when the input is cut at ${show(cuts)}`);
  check((cut.tail === undefined) === (whole.tail === undefined), 'a claim seen in one cut only');
  if (whole.tail) check(cut.tail!.equals(whole.tail), `the bytes after the claimed element differ when cut at ${show(cuts)}`);
  return whole;
}

// ---------------------------------------------------------------------------------------------
// Mutations of real streams, byte by byte

const SNIPPETS = [
  '<stream:stream>', `<stream:stream xmlns='jabber:client' xmlns:stream='${wire.NS.stream}' version='1.0'>`, '</stream:stream>', '<stream:stream/>',
  '<?xml version="1.0"?>', "<?xml version='1.1'?>", '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml  version="1.0" standalone="yes"?>', '<?xml', '?>', '<?xmlfoo?>',
  '<!DOCTYPE x>', '<!DOCTYPE stream [<!ENTITY e "x">]>', '<!-- c -->', '<!--', '-->', '<!---->', '<![CDATA[x]]>', '<![CDATA[', ']]>', '<!ELEMENT x ANY>', '<?pi x?>', '<??>',
  '<iq/>', "<iq type='set' id='1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", STARTTLS, authElement('PLAIN', 'AGFkbWluAHg='), '<abort/>',
  '<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>',
  `<LDM_interface version="1.3"><cmd><action>${CHANNEL_ACTION}</action><arguments>migration</arguments></cmd></LDM_interface>`,
  '<x/>', '<a><b></a></b>', 'text', ' ', '\n', '\r\n', '\t', '&amp;', '&bogus;', '&#0;', '&#x10FFFF;', '&#xD800;', '<a b="1" b="2"/>', '<a b=1/>', "<a b='<'/>",
  '<', '>', '"', "'", '/', '=', '<:x/>', '<x:/>', '<stream:error/>', '\u0000', '\u0001', '\ufeff', '\ufffe', '😀', 'é',
];
const SNIPPET_BYTES = SNIPPETS.map((s) => Buffer.from(s, 'utf8'));

type ByteMutation =
  | { op: 'delete'; at: number; len: number }
  | { op: 'duplicate'; at: number; len: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'swap'; at: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'truncate'; at: number }
  | { op: 'nest'; at: number; depth: number; name: string; closed: boolean };
const pos = fc.nat({ max: 1_000_000 });
const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: pos, len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: pos, len: fc.integer({ min: 1, max: 200 }) }),
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      at: pos,
      bytes: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...SNIPPET_BYTES) }, fc.uint8Array({ minLength: 1, maxLength: 8 })),
    }),
  },
  fc.record({ op: fc.constant('swap' as const), at: pos }),
  fc.record({ op: fc.constant('set' as const), at: pos, byte: fc.oneof(fc.constantFrom(0x3c, 0x3e, 0x2f, 0x22, 0x27, 0x26, 0x3f, 0x21, 0x5d, 0x2d, 0x00, 0x0d, 0x80, 0xc3, 0xe2, 0xf0, 0xff), fc.nat({ max: 255 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: pos }),
  fc.record({ op: fc.constant('nest' as const), at: pos, depth: fc.integer({ min: 1, max: 80 }), name: fc.constantFrom('a', 'cmd', 'stream:stream', 'iq'), closed: fc.boolean() }),
);

function mutateBytes(b: Buffer, m: ByteMutation): Buffer {
  const at = m.at % (b.length + 1);
  switch (m.op) {
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
    case 'duplicate':
      return Buffer.concat([b.subarray(0, at + m.len), b.subarray(at, at + m.len), b.subarray(at + m.len)]);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'swap': {
      if (at + 1 >= b.length) return b;
      const c = Buffer.from(b);
      [c[at], c[at + 1]] = [c[at + 1]!, c[at]!];
      return c;
    }
    case 'set': {
      if (at >= b.length) return b;
      const c = Buffer.from(b);
      c[at] = m.byte;
      return c;
    }
    case 'truncate':
      return b.subarray(0, at);
    case 'nest': {
      const open = Buffer.from(`<${m.name}>`.repeat(m.depth));
      return Buffer.concat([b.subarray(0, at), open, m.closed ? Buffer.from(`</${m.name}>`.repeat(m.depth)) : Buffer.alloc(0), b.subarray(at)]);
    }
  }
}

const mutated = (streams: Buffer[]) =>
  fc.record({ stream: fc.nat({ max: streams.length - 1 }), mutations: fc.array(byteMutation, { minLength: 1, maxLength: 4 }), cuts: cutsArb }).map(({ stream, mutations, cuts }) => ({
    bytes: mutations.reduce(mutateBytes, streams[stream]!),
    cuts,
  }));

// ---------------------------------------------------------------------------------------------
// [xmpp-stream] properties

t.test('[xmpp-stream] every cut of a short real exchange, and 1-byte reads of every real stream, read as the whole', async (t) => {
  let cases = 0;
  // Up to 64 bytes into the binary tail: the reader reads nothing past the switch, so more tells nothing.
  const upToTail = (b: Buffer, tail: number) => b.subarray(0, tail + 64);
  for (const [name, bytes] of [['client', upToTail(SHORT.client, SHORT.clientTail)], ['server', upToTail(SHORT.server, SHORT.serverTail)]] as const) {
    const whole = readStream([bytes], { claim: asksForChannel });
    t.equal(whole.error, undefined, `${name}: the whole stream reads`);
    for (let k = 1; k < bytes.length; k++) {
      const cut = readStream([bytes.subarray(0, k), bytes.subarray(k)], { claim: asksForChannel });
      if (show(cut) !== show(whole)) {
        t.fail(`${name} cut at byte ${k}: ${show(cut).slice(0, 400)}`);
        return;
      }
      cases++;
    }
  }
  for (const bytes of [...CLIENT_STREAMS.slice(0, 3), ...SERVER_STREAMS.slice(0, 3), upToTail(FULL.client, FULL.clientTail), upToTail(FULL.server, FULL.serverTail)]) {
    const ones = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    sameJson(readStream(ones, { claim: asksForChannel }), readStream([bytes], { claim: asksForChannel }), '1-byte reads');
    cases++;
  }
  F.count(STREAM, cases);
  t.pass(`${cases} cuts read as the whole`);
});

/** Random bytes, often behind a real stream's opening so the reader gets past the header. */
const openings = [Buffer.alloc(0), Buffer.from(CLIENT_HEADER), Buffer.from(wire.streamHeader('r', 'host')), Buffer.from('<?xml version="1.0"?><stream:stream>'), Buffer.from(`${CLIENT_HEADER}<LDM_interface version="1.3"><cmd>`)];
const randomStreamBytes = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.array(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...Buffer.from('<>/="\' &;!?:-[]x\nstream')) }, fc.integer({ min: 0x80, max: 0xff })), { maxLength: 400 }).map((a) => Uint8Array.from(a)),
  fc.array(fc.constantFrom(...SNIPPET_BYTES), { maxLength: 30 }).map((parts) => Buffer.concat(parts)),
);

F.fuzz(STREAM, '(s1) random bytes in random reads: XmlError or elements, the same for every cut', 1, 2000, fc.tuple(fc.constantFrom(...openings), randomStreamBytes, cutsArb), ([opening, bytes, cuts]) => {
  sameAcrossCuts(Buffer.concat([opening, bytes]), cuts, { claim: asksForChannel });
});

F.fuzz(STREAM, '(s2) mutated real client streams: XmlError or elements, the same for every cut, the channel\'s bytes included', 2, 1500, mutated(CLIENT_STREAMS), ({ bytes, cuts }) => {
  sameAcrossCuts(bytes, cuts, { claim: asksForChannel });
}, { heapBytes: 24 * 2 ** 20 });

F.fuzz(STREAM, '(s3) mutated real server streams (what LdmClient reads): the same promises', 3, 1000, mutated(SERVER_STREAMS), ({ bytes, cuts }) => {
  sameAcrossCuts(bytes, cuts, { claim: asksForChannel });
});

const TIGHT = xmlLimits({ maxBytes: 900, maxDepth: 6, maxElements: 25 });

/** Deepest nesting and element count of a delivered element. */
function shape(el: XmlElement): { depth: number; elements: number } {
  let elements = 1;
  let depth = 0;
  for (const c of el.children) {
    const s = shape(c);
    elements += s.elements;
    depth = Math.max(depth, s.depth);
  }
  return { depth: depth + 1, elements };
}

F.fuzz(STREAM, '(s4) tight limits (pre-login and small): a limit error, never an element past them', 4, 1500,
  fc.tuple(mutated([...CLIENT_STREAMS, ...SERVER_STREAMS]), fc.constantFrom<XmlLimits>(TIGHT, PRE_AUTH_LIMITS)),
  ([{ bytes, cuts }, limits]) => {
    const out = readStream(splitAt(bytes, cuts), { limits, claim: asksForChannel });
    for (const e of out.events) {
      if (e[0] !== 'element') continue;
      const s = shape(e[1] as XmlElement);
      check(s.depth <= limits.maxDepth - 1 && s.elements <= limits.maxElements, `an element of depth ${s.depth} and ${s.elements} elements passed limits ${show(limits)}`);
    }
  },
);

// Generated streams, well-formed by construction: what comes out is what went in.
interface Gen {
  name: string;
  attrs: [string, string][];
  children: (Gen | string)[];
}
const NAMES = ['iq', 'auth', 'LDM_interface', 'cmd', 'action', 'data', 'x:y', 'rasd:Address', 'a', 'B', 'message'];
const textChars = fc.constantFrom(...Array.from('ab <>&"\'\n]>é日😀\u00a0'), 'x', ']]', '\ufeff', '\u2028');
const genText = fc.string({ unit: textChars, maxLength: 12 });
const { gen } = fc.letrec<{ gen: Gen }>((tie) => ({
  gen: fc.record({
    name: fc.constantFrom(...NAMES),
    attrs: fc.uniqueArray(fc.tuple(fc.constantFrom('id', 'type', 'xmlns', 'a:b', 'version'), fc.string({ unit: fc.constantFrom(...'ab<>&"\' é'.split('')), maxLength: 6 })), { selector: ([k]) => k, maxLength: 3 }),
    children: fc.array(fc.oneof({ maxDepth: 5, depthSize: 'small' }, genText, tie('gen')), { maxLength: 4 }),
  }),
}));
const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escAttr = (s: string) => escText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;');
function write(g: Gen | string, cdata: boolean): string {
  if (typeof g === 'string') return cdata && !g.includes(']]>') && g !== '' ? `<![CDATA[${g}]]>` : escText(g);
  const attrs = g.attrs.map(([k, v]) => ` ${k}="${escAttr(v)}"`).join('');
  return g.children.length === 0 && !cdata ? `<${g.name}${attrs}/>` : `<${g.name}${attrs}>${g.children.map((c) => write(c, cdata)).join('')}</${g.name}>`;
}
/** The element the reader must deliver for `g` (line left out: compared apart). */
function expected(g: Gen): unknown {
  return {
    name: g.name,
    attrs: Object.fromEntries(g.attrs),
    text: g.children.filter((c): c is string => typeof c === 'string').join(''),
    children: g.children.filter((c): c is Gen => typeof c !== 'string').map(expected),
  };
}
function delivered(el: XmlElement): unknown {
  return { name: el.name, attrs: { ...el.attrs }, text: el.text, children: el.children.map(delivered) };
}
const BETWEEN = ['', ' ', '\n', '\r\n\t', '<!-- note -->', '<?pi data?>', '<?xml version="1.0"?>', "<?xml version='1.0' encoding='utf-8'?>\n"];

F.fuzz(STREAM, '(s5) generated well-formed streams, declarations and comments between documents: every element delivered as written', 5, 1000,
  fc.record({ docs: fc.array(fc.tuple(fc.constantFrom(...BETWEEN), gen, fc.boolean()), { maxLength: 6 }), close: fc.boolean(), bom: fc.boolean(), cuts: cutsArb }),
  ({ docs, close, bom, cuts }) => {
    const text = `${bom ? '\ufeff' : ''}${CLIENT_HEADER}` + docs.map(([between, g, cdata]) => between + write(g, cdata)).join('') + (close ? '</stream:stream>' : '');
    const out = sameAcrossCuts(Buffer.from(text, 'utf8'), cuts);
    check(out.error === undefined, `a well-formed stream broke: ${show(out.error)}\n${text}`);
    const elements = out.events.filter((e) => e[0] === 'element').map((e) => delivered(e[1] as XmlElement));
    sameJson(elements, docs.map(([, g]) => expected(g)), 'the elements delivered are not the elements written');
    check(out.events[0]?.[0] === 'header', 'the header comes first');
    check((out.events.at(-1)?.[0] === 'end') === close, 'the end is reported exactly when the stream is closed');
  },
);

F.fuzz(STREAM, '(s6) a channel switch after any documents, any tail, any cut: the tail handed over byte for byte, nothing parsed after it', 6, 1000,
  fc.record({ docs: fc.array(gen, { maxLength: 4 }), tail: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(FRAMES.subarray(0, 900)), fc.constantFrom(...SNIPPET_BYTES)), cuts: cutsArb }),
  ({ docs, tail, cuts }) => {
    const sw = `<LDM_interface version="1.3"><cmd><action>${CHANNEL_ACTION}</action><arguments>migration</arguments></cmd></LDM_interface>`;
    const head = Buffer.from(CLIENT_HEADER + docs.map((g) => write(g, false)).join('') + sw, 'utf8');
    const bytes = Buffer.concat([head, tail]);
    const out = sameAcrossCuts(bytes, cuts, { claim: asksForChannel });
    check(out.error === undefined, `the switch was refused: ${show(out.error)}`);
    check(out.tail !== undefined && out.tail.equals(Buffer.from(tail)), 'the bytes after the switch are not the tail sent');
    check(out.events.filter((e) => e[0] === 'element').length === docs.length + 1, 'an element was parsed after the switch');
  },
);

F.fuzz(STREAM, '(s7) pausing after any element and resuming before any read only delays: the same transcript', 7, 600,
  fc.record({ m: mutated(CLIENT_STREAMS), pauses: fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }), resumes: fc.uniqueArray(fc.integer({ min: 0, max: 14 }), { maxLength: 6 }) }),
  ({ m, pauses, resumes }) => {
    const chunks = splitAt(m.bytes, m.cuts);
    const plain = readStream(chunks, { claim: asksForChannel });
    const paused = readStream(chunks, { claim: asksForChannel, pauseAfter: new Set(pauses), resumeBefore: new Set(resumes) });
    // A paused reader delivers the elements later; an error met meanwhile ends it with fewer.
    // While paused the rest of the read is parsed: later start tags are admitted (refused by
    // name or not) before the elements that wait are delivered. Elements keep their order.
    const delivered = (tr: Transcript) => tr.events.filter((e) => e[0] !== 'admit');
    const n = delivered(paused).length;
    sameJson(delivered(paused), delivered(plain).slice(0, n), 'a paused reader reported something else');
    if (!paused.error) sameJson(delivered(paused), delivered(plain), 'the resumed reader lost elements');
  },
);

/**
 * W1 (FOUND by (s2), fixed in agent/xmpp/stream.ts `bytesAfter`).
 * To find the channel's first byte the reader re-encodes the text it decoded from the read;
 * invalid UTF-8 earlier in the same read decodes to U+FFFD (3 bytes) and moves that point
 * 2 bytes on per bad byte. The check that the byte before it is the switch's `>` catches
 * most cases (the switch is then refused, as designed), but when the channel's second byte
 * happens to be `>` the channel silently lost its first two bytes. A peer garbles only its
 * own channel this way, yet the reader must refuse or hand over every byte: a read that is
 * not UTF-8 up to the switch is now refused.
 */
t.test('W1: invalid UTF-8 before a channel switch in the same read never costs the channel bytes', async (t) => {
  const sw = `<LDM_interface version="1.3"><cmd><action>${CHANNEL_ACTION}</action><arguments>migration</arguments></cmd></LDM_interface>`;
  for (const tail of [Buffer.from('x>first frame bytes'), Buffer.from('xy>first frame bytes'), Buffer.from('no angle bracket')]) {
    const bytes = Buffer.concat([Buffer.from(`${CLIENT_HEADER}<iq>`), Buffer.from([0x80]), Buffer.from(`</iq>${sw}`), tail]);
    const out = readStream([bytes], { claim: asksForChannel });
    const refused = out.error?.[1] === BAD_UTF8_SWITCH;
    t.ok(refused || out.tail?.equals(tail), `tail ${JSON.stringify(tail.toString())}: ${refused ? 'switch refused' : `the channel got ${JSON.stringify(out.tail?.toString())}`}`);
  }
});

// ---------------------------------------------------------------------------------------------
// [sasl] the PLAIN and EXTERNAL payloads

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');
/** Well-formed UTF-16 (no lone surrogates): what survives UTF-8 both ways. */
const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
const fieldChars = fc.string({ unit: fc.oneof(fc.constantFrom('a', 'Z', '0', ' ', '=', '+', '/', '@', 'é', '日', '😀', '\u0000', '\n'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 10 });
const payloads = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...'ABCDabcd0189+/= \n\t'.split('')), maxLength: 40 }),
  fc.uint8Array({ maxLength: 60 }).map(b64),
  fc.tuple(fieldChars, fieldChars, fieldChars).map(([a, u, p]) => b64(`${a}\u0000${u}\u0000${p}`)),
  fc.tuple(fieldChars, fieldChars).map(([u, p]) => b64(`${u}\u0000${p}`)),
  fc.array(fieldChars, { maxLength: 5 }).map((parts) => b64(parts.join('\u0000'))),
  fc.tuple(fc.constantFrom('', ' ', '\n', '='), fc.constantFrom('', ' ', '\n', '==', '=')).chain(([pre, post]) => fc.uint8Array({ maxLength: 20 }).map((b) => pre + b64(b) + post)),
);

/** An independent reading of RFC 4616 over strict base64, to judge decodePlain by. */
function referencePlain(payload: string): { authzid: string; user: string; password: string } | null {
  const text = payload.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const parts = Buffer.from(text, 'base64').toString('utf8').split('\u0000');
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return null;
  return { authzid: parts[0]!, user: parts[1]!, password: parts[2]! };
}

F.fuzz(SASL, '(a1) PLAIN payloads: null or the three fields RFC 4616 gives, never an exception', 11, 4000, payloads, (payload) => {
  const got = decodePlain(payload);
  sameJson(got, referencePlain(payload), `decodePlain(${JSON.stringify(payload)})`);
  if (got) check(got.user !== '' && got.password !== '' && !`${got.authzid}${got.user}${got.password}`.includes('\u0000'), 'a field holds NUL or is empty');
});

F.fuzz(SASL, '(a2) PLAIN round trip: encodePlain then decodePlain gives back every well-formed login', 12, 2000,
  fc.tuple(fieldChars, fieldChars, fieldChars).filter(([a, u, p]) => u !== '' && p !== '' && ![a, u, p].some((s) => s.includes('\u0000') || !wellFormed(s))),
  ([authzid, user, password]) => {
    sameJson(decodePlain(encodePlain(user, password, authzid)), { authzid, user, password }, 'round trip');
  },
);

F.fuzz(SASL, '(a3) EXTERNAL payloads: "" for no identity, null when not base64, the identity otherwise', 13, 3000, fc.oneof(payloads, fieldChars.filter(wellFormed).map((s) => ({ id: s }))), (p) => {
  if (typeof p === 'object') {
    const got = decodeExternal(b64(p.id));
    check(got === p.id, `decodeExternal(base64(${JSON.stringify(p.id)})) gave ${JSON.stringify(got)}`);
    return;
  }
  const got = decodeExternal(p);
  const text = p.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  if (text === '' || text === '=') check(got === '', 'no identity asked');
  else if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) check(got === null, `not base64, yet ${JSON.stringify(got)}`);
  else check(got === Buffer.from(text, 'base64').toString('utf8'), 'the identity is not the payload decoded');
});

// ---------------------------------------------------------------------------------------------
// [sasl] the login states of a connection, on sockets the test drives

/** A socket (and, once STARTTLS is taken, a TLS socket) that the test writes into and reads. */
class FakeSocket extends Duplex {
  readonly written: Buffer[] = [];
  remoteAddress = '192.0.2.7';
  cert: Record<string, unknown> = {};
  authorized = false;
  authorizationError: string | undefined = 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
  constructor() {
    super({ allowHalfOpen: true });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.written.push(Buffer.from(chunk));
    cb();
  }
  getPeerCertificate(): Record<string, unknown> {
    return this.cert;
  }
  getProtocol(): string {
    return 'TLSv1.3';
  }
  getCipher(): { name: string } {
    return { name: 'FUZZ' };
  }
  get output(): string {
    return Buffer.concat(this.written).toString('utf8');
  }
}

type Cert = 'none' | 'trusted-admin' | 'trusted-ghost' | 'untrusted-admin' | 'pinned-admin';
const PINNED = 'AA:BB:CC';

function certOf(kind: Cert, s: FakeSocket): void {
  if (kind === 'none') return;
  const cn = kind.endsWith('admin') ? 'admin' : 'ghost';
  s.cert = { subject: { CN: cn }, issuer: { CN: 'fuzz-ca' }, fingerprint256: kind === 'pinned-admin' ? PINNED : 'FF:FF' };
  s.authorized = kind.startsWith('trusted');
}

/** One login, driven step by step: each step is written (cut as given) once the connection reads again. */
async function login(cert: Cert, plainSteps: Buffer[][], tlsSteps: Buffer[][]) {
  const lines: string[] = [];
  const log = createLogger('info', 'fuzz', (line) => lines.push(line));
  const tried: string[] = [];
  let executed = 0;
  let closes = 0;
  const plain = new FakeSocket();
  const tls: { socket?: FakeSocket } = {};
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  const principal = (name: string, via: Principal['via']): Principal => ({ name, role: 'write', via });
  const deps: ConnectionDeps = {
    kind: 'remote',
    domain: 'fuzz-host',
    limits: DEFAULT_XML_LIMITS,
    timeouts: { handshakeMs: 60_000, idleMs: 60_000, partialDocumentMs: 60_000 },
    maxOutboundBytes: 1 << 20,
    maxQueuedDocuments: 4,
    maxAuthAttempts: 3,
    manager: {
      execute: async (doc: { version: string }) => {
        executed++;
        return overallFailure('fuzz manager', doc.version);
      },
    } as unknown as Manager,
    bus: new EventBus(),
    log,
    trustedFingerprints: new Set([PINNED]),
    authenticatePassword: async (user, password) => {
      tried.push(user);
      if (user.length % 2 === 0) await tick();
      return user === 'admin' && password === PASSWORD ? principal('admin', 'password') : null;
    },
    certificatePrincipal: async (cn) => (cn === 'admin' ? principal('admin', 'certificate') : null),
    startTls: (_plain, onSecure) => {
      setImmediate(() => {
        const secure = (tls.socket = new FakeSocket());
        certOf(cert, secure);
        onSecure(secure as unknown as TLSSocket);
      });
    },
    onClose: () => closes++,
    binaryChannels: () => undefined,
  };
  const conn = new Connection(plain as unknown as net.Socket, deps);
  const over = () => conn.state === 'closing' || conn.state === 'closed';
  /** Until the connection reads again (it pauses while a login is checked) or closes. */
  const settle = async (s: FakeSocket) => {
    for (let i = 0; i < 40; i++) {
      await tick();
      if (over() || (!s.isPaused() && s.readableLength === 0 && conn.state !== 'tls-handshake')) return;
    }
  };
  const feed = async (s: FakeSocket, steps: Buffer[][]) => {
    for (const pieces of steps) {
      for (const p of pieces) {
        if (over() || s.destroyed) return;
        s.push(p);
        await tick();
      }
      await settle(s);
    }
  };
  await feed(plain, plainSteps);
  await settle(plain);
  const secure = tls.socket;
  if (secure) await feed(secure, tlsSteps);
  const state = conn.state;
  const who = conn.principal;
  const outputs = { plain: plain.output, tls: secure?.output ?? '' };
  secure?.destroy();
  plain.destroy();
  await tick();
  await tick();
  return { conn, state, who, outputs, lines, tried, executed, closes: () => closes, secure: secure !== undefined };
}

const SUCCESS = wire.saslSuccess();
const count = (s: string, what: string) => s.split(what).length - 1;

/** The server's output is a well-formed stream (or two: a new one follows a SASL success), header first. */
function wellFormedOutput(text: string, what: string): void {
  const at = text.indexOf(SUCCESS);
  const streams = at < 0 ? [text] : [text.slice(0, at + SUCCESS.length), text.slice(at + SUCCESS.length)];
  for (const s of streams) {
    if (s === '') continue;
    const out = readStream([Buffer.from(s, 'utf8')]);
    check(out.error === undefined, `${what}: the agent wrote a broken stream (${show(out.error)}): ${s.slice(0, 600)}`);
    check(out.events[0]?.[0] === 'header', `${what}: the agent's stream does not start with its header`);
  }
}

const TLS_HEADER = Buffer.from(CLIENT_HEADER);
const plainLogin = (user: string, password: string, authzid = '') => authElement('PLAIN', encodePlain(user, password, authzid));
/** What a peer may send after STARTTLS, good and bad, the real client's elements among them. */
const tlsStep: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(plainLogin('admin', PASSWORD)) },
  { weight: 3, arbitrary: fc.constantFrom(plainLogin('admin', 'wrong'), plainLogin('ghost', PASSWORD), plainLogin('admin', PASSWORD, 'admin'), plainLogin('admin', PASSWORD, 'root'), plainLogin('adm', `${PASSWORD}x`)) },
  { weight: 2, arbitrary: fc.constantFrom(authElement('EXTERNAL', '='), authElement('EXTERNAL', ''), authElement('EXTERNAL', b64('admin')), authElement('EXTERNAL', b64('ghost')), authElement('EXTERNAL', '!!')) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('PLAIN', 'plain', 'EXTERNAL', 'SCRAM-SHA-1', '', 'DIGEST-MD5'), payloads).map(([m, p]) => authElement(m, escText(p))) },
  fc.constantFrom(`<auth xmlns='${wire.NS.sasl}'>${b64('\u0000admin\u0000x')}</auth>`, `<auth xmlns='${wire.NS.sasl}' mechanism='PLAIN'/>`, `<abort xmlns='${wire.NS.sasl}'/>`, `<response xmlns='${wire.NS.sasl}'>=</response>`),
  { weight: 2, arbitrary: fc.constant(CLIENT_HEADER) },
  fc.constantFrom(STARTTLS, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>", "<iq type='get' id='q'/>", '<presence/>', '<message>hi</message>', '<foo/>'),
  fc.constantFrom('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>', `<LDM_interface version="1.3"><cmd><action>${CHANNEL_ACTION}</action><arguments>migration</arguments></cmd></LDM_interface>`),
  fc.constantFrom('</stream:stream>', 'junk', '<', '<?xml version="1.0"?>', '<!DOCTYPE x>', '\u0000'),
  fc.tuple(fc.constant(plainLogin('admin', PASSWORD)), fc.array(byteMutation, { minLength: 1, maxLength: 2 })).map(([s, ms]) => ms.reduce(mutateBytes, Buffer.from(s)).toString('latin1')),
);
/** A step cut into up to three reads. */
const cutStep = (s: string | Buffer) => fc.array(fc.nat({ max: 10_000 }), { maxLength: 2 }).map((cuts) => splitAt(Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'), cuts));
const plainPart = fc.oneof(
  { weight: 6, arbitrary: fc.constant(CLIENT_HEADER + STARTTLS) },
  fc.constantFrom(CLIENT_HEADER + STARTTLS + plainLogin('admin', PASSWORD), CLIENT_HEADER + plainLogin('admin', PASSWORD), CLIENT_HEADER + '<LDM_interface version="1.3"/>', STARTTLS, `${CLIENT_HEADER}${STARTTLS}${STARTTLS}`),
  fc.tuple(fc.constant(CLIENT_HEADER + STARTTLS), fc.array(byteMutation, { minLength: 1, maxLength: 3 })).map(([s, ms]) => ms.reduce(mutateBytes, Buffer.from(s)).toString('latin1')),
);
const certArb = fc.constantFrom<Cert>('none', 'none', 'trusted-admin', 'trusted-ghost', 'untrusted-admin', 'pinned-admin');

/** Whether `step` is a login the agent must accept, given the client's certificate. */
function validLogin(step: string, cert: Cert): boolean {
  let el: XmlElement;
  try {
    el = parseXml(Buffer.from(step, 'latin1').toString('utf8'));
  } catch {
    return false;
  }
  if (el.local !== 'auth') return false;
  const mech = (attr(el, 'mechanism') ?? '').toUpperCase();
  if (mech === 'PLAIN') {
    const c = decodePlain(el.text);
    return c !== null && c.user === 'admin' && c.password === PASSWORD && (c.authzid === '' || c.authzid === 'admin');
  }
  if (mech === 'EXTERNAL') {
    if (cert !== 'trusted-admin' && cert !== 'pinned-admin') return false;
    const asked = decodeExternal(el.text);
    return asked === '' || asked === 'admin';
  }
  return false;
}

const A4_OUTCOMES = new Map<string, number>();

F.fuzzAsync(SASL, '(a4) any handshake a peer sends: success only for a valid login, bounded failures, no internal error, a well-formed answer, a clean close', 14, 600,
  fc.record({ cert: certArb, plain: plainPart.chain(cutStep), steps: fc.array(tlsStep, { maxLength: 7 }).chain((steps) => fc.tuple(...steps.map(cutStep)).map((cut) => ({ steps, cut }))) }),
  async ({ cert, plain, steps }) => {
    const r = await login(cert, [plain], [[TLS_HEADER], ...steps.cut]);
    const errors = r.lines.filter((l) => /^\S+ error /.test(l));
    check(errors.length === 0, `the connection logged an internal error: ${errors.join(' | ')}`);
    const successes = count(r.outputs.tls, SUCCESS);
    check(successes <= 1, `${successes} SASL successes on one connection`);
    check((successes === 1) === (r.who !== undefined), `success written ${successes}, principal ${show(r.who)}`);
    if (r.who) {
      check(r.who.name === 'admin', `logged in as ${r.who.name}`);
      check(steps.steps.some((s) => validLogin(s, cert)), `a login succeeded without a valid credential: ${show(steps.steps)} (cert ${cert})`);
      if (r.who.via === 'certificate') check(cert === 'trusted-admin' || cert === 'pinned-admin', `a certificate login with certificate ${cert}`);
    }
    check(r.executed === 0 || r.who !== undefined, 'a document was executed before login');
    const failures = count(r.outputs.tls, `<failure xmlns='${wire.NS.sasl}'>`) - count(r.outputs.tls, '<aborted/>');
    check(failures <= 3 + 1, `${failures} SASL failures: more than the 3 attempts allowed`);
    check(r.tried.length <= 3 + (r.who ? 1 : 0), `${r.tried.length} passwords checked on one connection`);
    wellFormedOutput(r.outputs.plain, 'plain socket');
    wellFormedOutput(r.outputs.tls, 'TLS socket');
    check(r.conn.state === 'closed' && r.closes() === 1, `after both sockets closed: state ${r.conn.state}, onClose called ${r.closes()} times`);
    const seen = r.who ? `login by ${r.who.via}` : !r.secure ? 'no TLS' : failures >= 4 ? 'too many attempts' : r.outputs.tls.includes('<stream:error>') ? 'stream error' : failures > 0 ? 'refused, still open' : 'no attempt';
    A4_OUTCOMES.set(seen, (A4_OUTCOMES.get(seen) ?? 0) + 1);
  },
  { caseMs: 2000 },
);

// The generator must reach every way a login ends, or the property proves little.
t.test('[sasl] (a4) reached every outcome of a login', async (t) => {
  for (const outcome of ['login by password', 'login by certificate', 'no TLS', 'too many attempts', 'stream error', 'refused, still open']) {
    t.ok((A4_OUTCOMES.get(outcome) ?? 0) > 0, `${outcome}: ${A4_OUTCOMES.get(outcome) ?? 0} cases`);
  }
});

F.fuzzAsync(SASL, '(a5) a real login after up to two wrong ones, however cut: online as admin, its documents answered', 15, 200,
  fc.record({
    wrong: fc.array(fc.constantFrom(plainLogin('admin', 'nope'), plainLogin('ghost', PASSWORD), authElement('PLAIN', '!!!'), authElement('PLAIN', b64('admin')), authElement('SCRAM-SHA-1', '=')), { maxLength: 2 }),
    cert: fc.constantFrom<Cert>('none', 'trusted-admin', 'pinned-admin'),
    external: fc.boolean(),
    seedCut: fc.array(fc.nat({ max: 10_000 }), { maxLength: 2 }),
  }),
  async ({ wrong, cert, external, seedCut }) => {
    const good = external && cert !== 'none' ? authElement('EXTERNAL', '=') : plainLogin('admin', PASSWORD);
    const cut = (s: string) => splitAt(Buffer.from(s, 'latin1'), seedCut);
    const doc = '<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>';
    const r = await login(cert, [cut(CLIENT_HEADER + STARTTLS)], [[TLS_HEADER], ...wrong.map(cut), cut(good), cut(CLIENT_HEADER), cut(doc)]);
    check(r.state === 'online' && r.who?.name === 'admin', `not online as admin: state ${r.state}, ${show(r.who)}; output ${r.outputs.tls.slice(-400)}`);
    check(count(r.outputs.tls, `<failure xmlns='${wire.NS.sasl}'>`) === wrong.length, 'one failure per wrong attempt');
    check(r.executed === 1, `the document after login was executed ${r.executed} times`);
    wellFormedOutput(r.outputs.tls, 'TLS socket');
  },
  { caseMs: 2000 },
);

F.finish();
