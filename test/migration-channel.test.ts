/**
 * The migration page stream (agent/migration/channel.ts) and the switch of an
 * authenticated XMPP connection to it (agent/xmpp/connection.ts, client.ts):
 * frames survive any split of the input; hostile frames are refused by name; the
 * encoder's queue stays under its bound against a slow reader; over a real agent's
 * TLS port a write user switches and streams a guest into another one with equal
 * digests, a read user and an unknown channel are refused, and bytes sent with the
 * switch document are not lost.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import net, { type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { ErrorCodes } from '../agent/errors.ts';
import type { Guest, PageData } from '../agent/hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import type { Session } from '../agent/manager/manager.ts';
import {
  applyBatch,
  ChannelError,
  FRAME_CONTROL,
  FRAME_END,
  FRAME_PAGES,
  PageStreamDecoder,
  PageStreamEncoder,
  sendPass,
  type FrameProblem,
  type PageBatch,
} from '../agent/migration/channel.ts';
import { digestOfGuest, RunningDigest } from '../agent/migration/digest.ts';
import { ClientError } from '../agent/xmpp/client.ts';
import type { BinaryChannelHandler } from '../agent/xmpp/connection.ts';
import { StreamReader } from '../agent/xmpp/stream.ts';
import { DEFAULT_XML_LIMITS } from '../agent/xml/limits.ts';
import { startTestAgent, type TestAgent } from './helpers/agent.ts';
import { adminSession } from './helpers/session.ts';
import { collector } from './helpers/collector.ts';

const M = 2 ** 20;

function hypervisor(t: Test): SimHypervisor {
  const hv = new SimHypervisor();
  t.teardown(() => hv.close());
  return hv;
}

/** A guest with `count` pages of random data and some zero pages written among them. */
function filledGuest(hv: SimHypervisor, name: string, count: number, memoryBytes = 32 * M): { guest: Guest; indexes: Uint32Array } {
  const guest = hv.create({ name, memoryBytes });
  const pages: PageData[] = [];
  const indexes = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    // Spread over the guest, every tenth written with zeros (it travels as its index only).
    const index = (i * 7) % guest.pages;
    indexes[i] = index;
    pages.push({ index, bytes: i % 10 === 9 ? null : randomBytes(PAGE_SIZE) });
  }
  guest.writePages(pages);
  return { guest, indexes };
}

/** A receiver: decodes frames into `guest`, keeping a running digest. */
function receiver(guest: Guest) {
  const digest = new RunningDigest();
  const controls: unknown[] = [];
  let ended = false;
  let batches = 0;
  const decoder = new PageStreamDecoder(
    { guestPages: guest.pages },
    {
      pages: (batch: PageBatch) => {
        batches++;
        applyBatch(guest, batch, digest);
      },
      control: (m) => controls.push(m),
      end: () => (ended = true),
    },
  );
  return { decoder, digest, controls, ended: () => ended, batches: () => batches };
}

t.test('frames round-trip through any split of the input', async (t) => {
  const hv = hypervisor(t);
  const { guest: source, indexes } = filledGuest(hv, 'src', 700);
  const { out, bytes } = collector();
  const encoder = new PageStreamEncoder(out, { pagesPerBatch: 64 });
  const sent = new RunningDigest();
  await encoder.control({ phase: 'pre-copy', pass: 1, name: 'ldg1 ünïcödé' });
  const stats = await sendPass(source, indexes, encoder, sent);
  await encoder.control({ pass: 1, digest: sent.hex });
  await encoder.end();
  t.equal(stats.pages, 700);
  t.equal(stats.zeroPages, 70);
  t.equal(stats.dataPages, 630);
  const stream = bytes();
  t.equal(encoder.stats.bytes, stream.length, 'every byte written is counted');
  t.equal(stats.bytes, 11 * 9 + 700 * 5 + 630 * PAGE_SIZE, 'a zero page costs its index and kind only');
  t.equal(sent.value, await digestOfGuest(source), 'the sender recorded every page it read');

  for (let round = 0; round < 6; round++) {
    const target = hv.create({ name: `dst${round}`, memoryBytes: 32 * M });
    // Zero pages must overwrite: the target starts with data where the source has zeros.
    target.writePages([...indexes].filter((_, i) => i % 10 === 9).map((index) => ({ index, bytes: randomBytes(PAGE_SIZE) })));
    const r = receiver(target);
    // Round 0: one write; round 1: 1 byte at a time for the first 20 KB; others: random splits.
    let off = 0;
    while (off < stream.length) {
      const n = round === 0 ? stream.length : round === 1 && off < 20_000 ? 1 : 1 + Math.floor(Math.random() * 50_000);
      r.decoder.write(stream.subarray(off, off + n));
      off += n;
    }
    r.decoder.finish();
    t.ok(r.ended(), `round ${round}: end frame seen`);
    t.same(r.controls, [{ phase: 'pre-copy', pass: 1, name: 'ldg1 ünïcödé' }, { pass: 1, digest: sent.hex }]);
    t.equal(r.batches(), Math.ceil(700 / 64));
    t.equal(r.digest.value, sent.value, `round ${round}: running digests equal`);
    t.equal(await digestOfGuest(target), sent.value, `round ${round}: the target holds the source's memory`);
  }
});

function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** One frame: type, declared length, payload. */
function frame(type: number, payload: Buffer, length = payload.length): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(length, 1);
  return Buffer.concat([h, payload]);
}

function pagesPayload(count: number, entries: [index: number, kind: number, bytes?: Uint8Array][]): Buffer {
  const parts = [Buffer.alloc(4)];
  parts[0]!.writeUInt32BE(count);
  for (const [index, kind, bytes] of entries) {
    const h = Buffer.alloc(5);
    h.writeUInt32BE(index);
    h[4] = kind;
    parts.push(h);
    if (bytes) parts.push(Buffer.from(bytes));
  }
  return Buffer.concat(parts);
}

t.test('hostile frames are refused with their errors, and nothing is read after one', async (t) => {
  const guestPages = 1024;
  const page = Buffer.alloc(PAGE_SIZE, 1);
  const cases: [string, Buffer, FrameProblem, RegExp][] = [
    ['unknown type', frame(9, Buffer.alloc(0)), 'unknown-type', /unknown frame type 9/],
    // Only the header is sent: the bound is applied before any payload is buffered.
    ['frame over the bound', frame(FRAME_PAGES, Buffer.alloc(0), 64 * M), 'too-large', /67108864 bytes is larger than the limit of 4194304/],
    ['page index past the guest', frame(FRAME_PAGES, pagesPayload(1, [[1024, 0]])), 'page-index', /page 1024 .* past the guest's 1024 pages/],
    ['unknown page kind', frame(FRAME_PAGES, pagesPayload(1, [[5, 2]])), 'page-kind', /page 5 .* kind 2/],
    ['count larger than the payload', frame(FRAME_PAGES, pagesPayload(3, [[1, 1, page], [2, 0]])), 'batch-length', /does not hold the 3 pages/],
    ['data page cut short', frame(FRAME_PAGES, pagesPayload(1, [[1, 1, page.subarray(0, 100)]])), 'batch-length', /does not hold the 1 pages/],
    ['bytes left after the pages', frame(FRAME_PAGES, Buffer.concat([pagesPayload(1, [[1, 0]]), Buffer.alloc(3)])), 'batch-length', /does not hold/],
    ['empty pages frame', frame(FRAME_PAGES, Buffer.alloc(0)), 'batch-length', /does not hold/],
    ['control that is not JSON', frame(FRAME_CONTROL, Buffer.from('{"a":')), 'control', /not UTF-8 JSON/],
    ['control that is not UTF-8', frame(FRAME_CONTROL, Buffer.from([0x22, 0xff, 0x22])), 'control', /not UTF-8 JSON/],
    ['end with a payload', frame(FRAME_END, Buffer.alloc(2)), 'end-length', /carries 2 bytes/],
    ['bytes after the end', Buffer.concat([frame(FRAME_END, Buffer.alloc(0)), Buffer.from([1])]), 'after-end', /after the end frame/],
  ];
  for (const [name, bytes, problem, text] of cases) {
    let applied = 0;
    const decoder = new PageStreamDecoder({ guestPages }, { pages: () => applied++, control: () => {}, end: () => {} });
    const err = thrown(() => decoder.write(bytes));
    t.ok(err instanceof ChannelError, `${name}: refused`);
    const ce = err as ChannelError;
    t.equal(ce.code, ErrorCodes.MIGRATION_FRAME, name);
    t.equal(ce.problem, problem, name);
    t.match(ce.message, text, name);
    t.equal(applied, 0, `${name}: no page applied`);
    // The decoder stays failed: a valid frame afterwards is not read.
    t.equal((thrown(() => decoder.write(frame(FRAME_END, Buffer.alloc(0)))) as ChannelError | undefined)?.problem, problem, `${name}: nothing read after it`);
  }

  // A frame cut by the end of the input.
  const cut = new PageStreamDecoder({ guestPages }, { pages: () => {}, control: () => {}, end: () => {} });
  cut.write(frame(FRAME_PAGES, pagesPayload(1, [[1, 1, page]])).subarray(0, 100));
  t.throws(() => cut.finish(), { problem: 'truncated', code: ErrorCodes.MIGRATION_FRAME });

  // A larger bound lets the same 5 MiB frame header through (the bound is the decoder's option).
  const wide = new PageStreamDecoder({ guestPages, maxFrameBytes: 8 * M }, { pages: () => {}, control: () => {}, end: () => {} });
  t.doesNotThrow(() => wide.write(frame(FRAME_PAGES, Buffer.alloc(0), 5 * M)));
  t.notOk(wide.atBoundary, 'waiting for the payload');
});

t.test("the encoder's queued bytes never pass the bound against a slow reader", async (t) => {
  const hv = hypervisor(t);
  const { guest, indexes } = filledGuest(hv, 'src', 2000);
  const target = hv.create({ name: 'dst', memoryBytes: 32 * M });
  const r = receiver(target);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const peer = await accepted;
  t.teardown(() => {
    client.destroy();
    peer.destroy();
  });
  // The reader takes 256 KiB every 10 ms (about 25 MB/s): far slower than the sender.
  peer.pause();
  const reading = setInterval(() => {
    let taken = 0;
    for (let chunk: Buffer | null; taken < 256 * 1024 && (chunk = peer.read() as Buffer | null); ) {
      taken += chunk.length;
      r.decoder.write(chunk);
    }
  }, 10);
  t.teardown(() => clearInterval(reading));

  const bound = 1 * M;
  // Frames may pile up to the bound (by default they go one at a time, far below it).
  const encoder = new PageStreamEncoder(client, { maxQueuedBytes: bound, maxInFlightBytes: Infinity, pagesPerBatch: 16 });
  let samples = 0;
  let overBound = 0;
  const sampler = setInterval(() => {
    samples++;
    if (encoder.queuedBytes > bound) overBound++;
  }, 1);
  const sent = new RunningDigest();
  await sendPass(guest, indexes, encoder, sent);
  await encoder.end();
  await encoder.drained();
  clearInterval(sampler);
  const deadline = Date.now() + 10_000;
  while (!r.ended() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.ok(r.ended(), 'the reader got everything');
  t.ok(encoder.stats.bytes > 10 * bound, `sent ${encoder.stats.bytes} bytes, over 10 times the bound`);
  t.ok(encoder.peakQueuedBytes <= bound, `peak queued ${encoder.peakQueuedBytes} <= ${bound}`);
  // It did queue up to the bound: the reader, not the sender, set the pace.
  t.ok(encoder.peakQueuedBytes > bound / 2, `peak queued ${encoder.peakQueuedBytes} reached the bound`);
  t.equal(overBound, 0, `no sample over the bound (${samples} samples)`);
  t.equal(r.digest.value, sent.value);
});

t.test('a closed socket fails the encoder with a typed error instead of waiting forever', async (t) => {
  const hv = hypervisor(t);
  const { guest, indexes } = filledGuest(hv, 'src', 300);
  const out = new PassThrough({ highWaterMark: 1024 });
  const encoder = new PageStreamEncoder(out, { maxQueuedBytes: 0, pagesPerBatch: 8 });
  setTimeout(() => out.destroy(), 20);
  await t.rejects(sendPass(guest, indexes, encoder), { code: ErrorCodes.MIGRATION_CHANNEL });
});

t.test('the stream reader hands over exactly the bytes after the last element, whatever the split', async (t) => {
  // Multi-byte characters before the end, a document longer than the reader's 16 KiB slices,
  // and binary after it that is not UTF-8 at all.
  const filler = 'é😀'.repeat(3000);
  const head = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><presence/>`;
  const doc = `<LDM_interface version="1.3"><!-- ${filler} --><cmd><action>migration-channel</action><arguments>x${filler}</arguments></cmd></LDM_interface>`;
  const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x3c, 0x00, 0xe2, 0x82]), randomBytes(3000)]);
  const input = Buffer.concat([Buffer.from(head + doc, 'utf8'), binary]);
  const docEnd = input.length - binary.length;
  const cuts = new Set<number>([1, docEnd - 1, docEnd, docEnd + 1, docEnd + 5, 16 * 1024, 16 * 1024 + 1, 32 * 1024 - 1]);
  for (let i = 0; i < 40; i++) cuts.add(1 + Math.floor(Math.random() * (input.length - 2)));
  for (const cut of cuts) {
    for (const second of [input.length, cut + 1 + Math.floor(Math.random() * (input.length - cut))]) {
      const chunks = [input.subarray(0, cut), input.subarray(cut, second), input.subarray(second)].filter((c) => c.length > 0);
      const seen: string[] = [];
      let rest: Buffer | undefined;
      const reader = new StreamReader(DEFAULT_XML_LIMITS, {
        header: () => {},
        element: (el, _bytes, r) => {
          seen.push(el.local);
          rest = r;
        },
        end: () => {},
        last: (el) => el.local === 'ldm_interface',
      });
      let handed = -1;
      for (let i = 0; i < chunks.length; i++) {
        if (rest !== undefined) break;
        reader.write(chunks[i]!);
        if (rest !== undefined) handed = i;
      }
      // What the connection does: the chunks after the one the element ended in are the channel's too.
      const after = Buffer.concat([rest ?? Buffer.alloc(0), ...chunks.slice(handed + 1)]);
      t.same(seen, ['presence', 'ldm_interface'], `cut ${cut}/${second}: elements`);
      if (!after.equals(binary)) t.fail(`cut ${cut}/${second}: ${after.length} bytes handed over, ${binary.length} expected`);
    }
  }
  t.pass(`${cuts.size * 2} splits`);
});

/** A test agent whose binary channel `test-pages` writes the stream into `target`. */
async function channelAgent(t: Test, target: Guest) {
  const opened: { session: Session; rest: number }[] = [];
  let done!: (d: { digest: bigint; error?: Error }) => void;
  const finished = new Promise<{ digest: bigint; error?: Error }>((resolve) => (done = resolve));
  const handler: BinaryChannelHandler = (socket, rest, session) => {
    opened.push({ session, rest: rest.length });
    const r = receiver(target);
    const feed = (chunk: Buffer) => {
      try {
        r.decoder.write(chunk);
        if (r.ended()) {
          done({ digest: r.digest.value });
          socket.end();
        }
      } catch (err) {
        done({ digest: r.digest.value, error: err as Error });
        socket.destroy();
      }
    };
    feed(rest);
    socket.on('data', feed);
    socket.resume();
  };
  const agent: TestAgent = await startTestAgent(t, {
    users: [
      ['writer', 'write', 'writer-secret'],
      ['reader', 'read', 'reader-secret'],
    ],
    // The daemon does not register a channel yet (the migration target will): the hook is the server's option.
    tuning: { binaryChannels: (name: string) => (name === 'test-pages' ? handler : undefined) },
  });
  return { agent, opened, finished };
}

t.test('over a real agent: login, switch, 2,000 pages into another guest, equal digests', async (t) => {
  const hv = hypervisor(t);
  const { guest: source, indexes } = filledGuest(hv, 'src', 2000);
  const target = hv.create({ name: 'dst', memoryBytes: 32 * M });
  const { agent, opened, finished } = await channelAgent(t, target);

  const client = await adminSession(agent, 'writer', 'writer-secret');
  // A document before the switch is answered as usual.
  const listed = await client.request('<LDM_interface version="1.3"><cmd><action>list-domain</action><data version="3.0"/></cmd></LDM_interface>');
  t.equal(listed.response?.status, 'success');
  const socket = await client.openChannel('test-pages');
  t.equal(opened.length, 1, 'the handler has the connection');
  t.equal(opened[0]!.session.principal.name, 'writer');
  await t.rejects(client.request('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>'), ClientError, 'the client is done with XML');

  const encoder = new PageStreamEncoder(socket);
  const sent = new RunningDigest();
  const stats = await sendPass(source, indexes, encoder, sent);
  await encoder.end();
  const got = await finished;
  t.error(got.error);
  t.equal(stats.pages, 2000);
  t.equal(got.digest, sent.value, "the target's running digest equals the source's");
  t.equal(await digestOfGuest(target), await digestOfGuest(source), 'and the memories are equal');
  t.not(sent.value, 0n);
  socket.destroy();
});

t.test('a read user, an unknown channel and a malformed switch are refused, and the stream closes', async (t) => {
  const hv = hypervisor(t);
  const target = hv.create({ name: 'dst', memoryBytes: 32 * M });
  const { agent, opened } = await channelAgent(t, target);

  const reader = await adminSession(agent, 'reader', 'reader-secret');
  await t.rejects(reader.openChannel('test-pages'), { message: /refused the binary channel test-pages: user reader has role read and may not open a binary channel: it needs the write role/ });
  await t.rejects(reader.request('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>'), ClientError);

  const writer = await adminSession(agent, 'writer', 'writer-secret');
  await t.rejects(writer.openChannel('no-such-channel'), { message: /no binary channel no-such-channel on this agent/ });

  const again = await adminSession(agent, 'writer', 'writer-secret');
  // Two commands: a switch names exactly one channel in one command.
  const malformed = '<LDM_interface version="1.3"><cmd><action>migration-channel</action><arguments>test-pages</arguments></cmd><cmd><action>list-domain</action></cmd></LDM_interface>';
  const answer = await again.request(malformed).then(
    (doc) => doc,
    (err: Error) => err,
  );
  t.equal((answer as { response?: { status: string } }).response?.status, 'failure', 'answered with a failure');
  t.match(JSON.stringify(answer), /names one channel/);
  t.equal(opened.length, 0, 'no handler ever ran');
});

t.test('bytes that arrive in the same read as the switch document are not lost', async (t) => {
  const hv = hypervisor(t);
  const { guest: source, indexes } = filledGuest(hv, 'src', 600);
  const target = hv.create({ name: 'dst', memoryBytes: 32 * M });
  const { agent, opened, finished } = await channelAgent(t, target);

  // The first 100 pages are framed ahead and written together with the switch document.
  const ahead = collector();
  const sent = new RunningDigest();
  const early = new PageStreamEncoder(ahead.out, { pagesPerBatch: 32 });
  await sendPass(source, indexes.subarray(0, 100), early, sent);
  const first = ahead.bytes();

  const client = await adminSession(agent, 'writer', 'writer-secret');
  const socket = await client.openChannel('test-pages', first);
  t.ok(opened[0]!.rest > 0, `${opened[0]!.rest} bytes came with the switch document`);
  const encoder = new PageStreamEncoder(socket);
  await sendPass(source, indexes.subarray(100), encoder, sent);
  await encoder.end();
  const got = await finished;
  t.error(got.error);
  t.equal(got.digest, sent.value);
  t.equal(await digestOfGuest(target), await digestOfGuest(source));
  socket.destroy();
});
