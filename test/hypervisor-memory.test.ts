/**
 * Guest memory through the Guest interface: sparse reads, round trips, zero pages, the
 * dirty log (exact, at word boundaries and the last page, enable/disable semantics), the
 * digest (its definition, equality after copying, history-independence) and the scrub.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes } from '../agent/errors.ts';
import type { Guest, PageData } from '../agent/hypervisor/hypervisor.ts';
import { MAX_READ_PAGES } from '../agent/hypervisor/guest.ts';
import { CHUNK_BYTES, PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';

const G = 2 ** 30;
const M = 2 ** 20;

function hypervisor(t: Test): SimHypervisor {
  const hv = new SimHypervisor();
  t.teardown(() => hv.close());
  return hv;
}

function page(fill: number | string): Buffer {
  const b = Buffer.alloc(PAGE_SIZE);
  if (typeof fill === 'number') b.fill(fill);
  else b.write(fill.repeat(Math.ceil(PAGE_SIZE / fill.length)).slice(0, PAGE_SIZE), 'latin1');
  return b;
}

/** Every non-zero page of `from` written into `to`, in batches (what a migration's first pass does). */
function copyAll(from: Guest, to: Guest): number {
  let copied = 0;
  for (let first = 0; first < from.pages; first += MAX_READ_PAGES) {
    const batch = from.readPages(first, Math.min(MAX_READ_PAGES, from.pages - first)).filter((p) => p.bytes !== null);
    to.writePages(batch);
    copied += batch.length;
  }
  return copied;
}

t.test('a 64G guest is sparse: every page reads as zero and nothing is allocated', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'big', memoryBytes: 64 * G });
  t.equal(g.pages, 8 * 2 ** 20, '8M pages of 8 KiB');
  t.equal(g.residentBytes, 0);
  t.equal(g.touchedPages, 0);
  for (const first of [0, 12345, g.pages - 100]) {
    const pages = g.readPages(first, 100);
    t.equal(pages.length, 100);
    t.ok(pages.every((p, i) => p.index === first + i && p.bytes === null), `pages ${first}.. are zero markers`);
  }
  const target = Buffer.alloc(PAGE_SIZE, 7);
  t.equal(g.readPageInto(g.pages - 1, target), false, 'readPageInto says zero');
  t.ok(target.every((b) => b === 7), 'and leaves the target untouched');
  t.equal(g.residentBytes, 0, 'reading allocates nothing');
  t.equal(await g.digest(), createHash('sha256').digest('hex'), 'an empty guest hashes as SHA-256 of nothing');
});

t.test('sizes and ranges are checked', async (t) => {
  const hv = hypervisor(t);
  t.throws(() => hv.create({ name: 'x', memoryBytes: 0 }), { code: ErrorCodes.GUEST_SIZE });
  t.throws(() => hv.create({ name: 'x', memoryBytes: PAGE_SIZE + 1 }), { code: ErrorCodes.GUEST_SIZE });
  t.throws(() => hv.create({ name: 'x', memoryBytes: 2 ** 50 }), { code: ErrorCodes.GUEST_SIZE });
  const g = hv.create({ name: 'x', memoryBytes: 4 * M });
  t.throws(() => hv.create({ name: 'x', memoryBytes: 4 * M }), { code: ErrorCodes.GUEST_EXISTS });
  t.throws(() => g.readPages(500, 13), { code: ErrorCodes.GUEST_PAGE_RANGE }, 'past the end');
  t.throws(() => g.readPages(-1, 1), { code: ErrorCodes.GUEST_PAGE_RANGE });
  t.throws(() => g.readPages(0.5, 1), { code: ErrorCodes.GUEST_PAGE_RANGE });
  t.throws(() => g.readPagesAt([0, 512]), { code: ErrorCodes.GUEST_PAGE_RANGE });
  t.throws(() => g.readPageInto(0, Buffer.alloc(PAGE_SIZE - 1)), { code: ErrorCodes.GUEST_PAGE_RANGE });
  t.throws(() => g.writePages([{ index: 512, bytes: page(1) }]), { code: ErrorCodes.GUEST_PAGE_RANGE });
  // All pages are checked before any is written.
  t.throws(() => g.writePages([{ index: 1, bytes: page(1) }, { index: 2, bytes: Buffer.alloc(100) }]), { code: ErrorCodes.GUEST_PAGE_RANGE });
  t.equal(g.readPages(1, 1)[0]!.bytes, null, 'the valid page of a refused write was not written');
  t.equal(g.touchedPages, 0);
  const big = hv.create({ name: 'big', memoryBytes: 1 * G });
  t.throws(() => big.readPages(0, MAX_READ_PAGES + 1), { code: ErrorCodes.GUEST_PAGE_RANGE }, 'one read is bounded');
});

t.test('write and read round trip; reads are copies; zero pages are markers', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'rt', memoryBytes: 2 * M + 5 * PAGE_SIZE }); // 261 pages: the last chunk is partial
  const last = g.pages - 1;
  const written = new Map<number, Buffer>([
    [0, randomBytes(PAGE_SIZE)],
    [63, page('sixty-three ')],
    [64, page(0xa5)],
    [200, randomBytes(PAGE_SIZE)],
    [last, page('last page ')],
  ]);
  g.writePages([...written].map(([index, bytes]) => ({ index, bytes })));
  t.equal(g.touchedPages, 5);
  t.equal(g.residentBytes, 3 * CHUNK_BYTES + 5 * PAGE_SIZE, 'chunks 0, 1, 3 and the 5-page last chunk');
  const read = g.readPages(0, g.pages);
  for (const p of read) {
    const want = written.get(p.index);
    if (want) t.ok(p.bytes !== null && Buffer.from(p.bytes).equals(want), `page ${p.index} reads back`);
    else if (p.bytes !== null) t.fail(`page ${p.index} should be a zero marker`);
  }
  t.same(
    g.readPagesAt([last, 64, 1]).map((p) => [p.index, p.bytes === null]),
    [[last, false], [64, false], [1, true]],
    'readPagesAt keeps the order asked',
  );
  const copy = read[0]!.bytes!;
  copy.fill(0);
  t.ok(Buffer.from(g.readPages(0, 1)[0]!.bytes!).equals(written.get(0)!), 'changing a read copy does not change the guest');
  const into = Buffer.alloc(3 * PAGE_SIZE);
  t.equal(g.readPageInto(63, into, PAGE_SIZE), true);
  t.ok(into.subarray(PAGE_SIZE, 2 * PAGE_SIZE).equals(written.get(63)!), 'readPageInto at an offset');

  // Zeros: a null write into an untouched chunk allocates nothing; an all-zero page reads as a marker.
  const before = g.residentBytes;
  g.writePages([{ index: 150, bytes: null }]);
  t.equal(g.residentBytes, before, 'writing zeros into an untouched chunk allocates nothing');
  t.equal(g.touchedPages, 6, 'but it is a write');
  g.writePages([{ index: 64, bytes: Buffer.alloc(PAGE_SIZE) }]);
  t.equal(g.readPages(64, 1)[0]!.bytes, null, 'a page written with zeros reads as a zero marker');
  t.equal(g.readPageInto(64, into), false);
  g.writePages([{ index: 63, bytes: null }]);
  t.equal(g.readPages(63, 1)[0]!.bytes, null, 'a null write zeroes a written page');
});

t.test('the dirty log returns exactly the pages written, at word boundaries and the last page', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'dl', memoryBytes: 16 * G + 37 * PAGE_SIZE }); // 2M + 37 pages: the last word is partial
  const last = g.pages - 1;
  g.enableDirtyLog();
  t.same([...g.readAndClearDirty()], [], 'empty at first');
  const boundaries = [0, 1, 30, 31, 32, 33, 63, 64, 1023, 1024, 1025, 32767, 32768, 65535, 65536, last - 32, last - 1, last];
  const rnd = fc.sample(fc.integer({ min: 0, max: last }), { numRuns: 1000, seed: 42 });
  const all = [...boundaries, ...rnd, ...boundaries]; // some pages written more than once
  g.writePages(all.map((index) => ({ index, bytes: page(index & 0xff) })));
  const expected = [...new Set(all)].sort((a, b) => a - b);
  t.equal(g.dirtyPageCount, expected.length, 'the count before reading');
  const got = g.readAndClearDirty();
  t.ok(got instanceof Uint32Array);
  t.same([...got], expected, `${expected.length} distinct pages, ascending`);
  t.same([...g.readAndClearDirty()], [], 'reading cleared the log');
  t.equal(g.dirtyPageCount, 0);
  // Zero writes are writes too.
  g.writePages([{ index: last, bytes: null }, { index: 5, bytes: null }]);
  t.same([...g.readAndClearDirty()], [5, last]);
  // Into a caller's array: a view of it, nothing allocated; too small: a new array.
  const into = new Uint32Array(g.pages);
  g.writePages([{ index: 77, bytes: null }, { index: 31, bytes: null }]);
  const view = g.readAndClearDirty(into);
  t.same([...view], [31, 77]);
  t.equal(view.buffer, into.buffer, 'the answer is a view of the array given');
  g.writePages([{ index: 1, bytes: null }, { index: 2, bytes: null }]);
  const small = new Uint32Array(1);
  const other = g.readAndClearDirty(small);
  t.same([...other], [1, 2]);
  t.not(other.buffer, small.buffer, 'an array too small is not used');
});

t.test('the dirty log is exact for any set of writes (property)', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'prop', memoryBytes: 3000 * PAGE_SIZE });
  g.enableDirtyLog();
  const p = page(1);
  fc.assert(
    fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 2999 }), { maxLength: 200 }), { minLength: 1, maxLength: 4 }), (rounds) => {
      for (const writes of rounds) {
        g.writePages(writes.map((index) => ({ index, bytes: p })));
        const got = [...g.readAndClearDirty()];
        const want = [...new Set(writes)].sort((a, b) => a - b);
        if (got.length !== want.length || got.some((x, i) => x !== want[i])) return false;
      }
      return true;
    }),
    { numRuns: 300, seed: 7 },
  );
  t.pass('300 runs');
});

t.test('dirty log: enable, read while off, enable twice, disable', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'ed', memoryBytes: 8 * M });
  t.equal(g.dirtyLogEnabled, false);
  t.throws(() => g.readAndClearDirty(), { code: ErrorCodes.GUEST_DIRTY_LOG }, 'reading a disabled log is refused');
  g.writePages([{ index: 3, bytes: page(3) }]);
  g.enableDirtyLog();
  t.same([...g.readAndClearDirty()], [], 'writes before enable are not logged');
  g.writePages([{ index: 4, bytes: page(4) }]);
  g.enableDirtyLog();
  t.equal(g.dirtyPageCount, 1, 'enabling again keeps the log');
  g.disableDirtyLog();
  t.equal(g.dirtyLogEnabled, false);
  g.writePages([{ index: 5, bytes: page(5) }]);
  g.disableDirtyLog();
  g.enableDirtyLog();
  t.same([...g.readAndClearDirty()], [], 'disable dropped the log; writes while off are not logged');
  g.writePages([{ index: 6, bytes: page(6) }]);
  t.same([...g.readAndClearDirty()], [6]);
});

t.test('digest: its definition, equality after copying every non-zero page, inequality after one byte', async (t) => {
  const hv = hypervisor(t);
  const a = hv.create({ name: 'a', memoryBytes: 1 * G });
  const p7 = randomBytes(PAGE_SIZE);
  const p100000 = page('hello ');
  a.writePages([
    { index: 100000, bytes: p100000 },
    { index: 7, bytes: p7 },
    { index: 8, bytes: Buffer.alloc(PAGE_SIZE) }, // written with zeros: absent from the digest
  ]);
  const expected = createHash('sha256');
  for (const [index, bytes] of [[7, p7], [100000, p100000]] as const) {
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(index));
    expected.update(header).update(bytes);
  }
  t.equal(await a.digest(), expected.digest('hex'), 'SHA-256 over (uint64be index, content) of the non-zero pages, ascending');

  // A bigger, scattered content, then a copy into a guest with a different history.
  const writes: PageData[] = [];
  // 3000 pages in the first 128M (a working set) and a few scattered over the whole guest.
  for (let i = 0; i < 2990; i++) writes.push({ index: (i * 7919) % 16384, bytes: randomBytes(PAGE_SIZE) });
  for (let i = 0; i < 10; i++) writes.push({ index: 16384 + i * 11111, bytes: randomBytes(PAGE_SIZE) });
  a.writePages(writes);
  const b = hv.create({ name: 'b', memoryBytes: 1 * G });
  b.writePages([{ index: 5, bytes: page('old content ') }, { index: 99999, bytes: page(9) }]);
  b.writePages([{ index: 5, bytes: null }, { index: 99999, bytes: Buffer.alloc(PAGE_SIZE) }]); // zeroed again
  const copied = copyAll(a, b);
  t.equal(copied, 3002, 'every non-zero page copied (zero pages skipped)');
  const da = await a.digest();
  t.equal(await b.digest(), da, 'equal content gives an equal digest, whatever the write history');
  const one = Buffer.from(b.readPages(7, 1)[0]!.bytes!);
  one[PAGE_SIZE - 1]! ^= 1;
  b.writePages([{ index: 7, bytes: one }]);
  t.not(await b.digest(), da, 'one byte changed: the digest differs');
  one[PAGE_SIZE - 1]! ^= 1;
  b.writePages([{ index: 7, bytes: one }]);
  t.equal(await b.digest(), da, 'and is equal again once restored');
  b.writePages([{ index: 12345, bytes: page(1) }]);
  t.not(await b.digest(), da, 'an extra page differs');
  const c = hv.create({ name: 'c', memoryBytes: 2 * G });
  copyAll(a, c);
  t.equal(await c.digest(), da, 'the nominal size is not part of the digest');
});

t.test('destroy scrubs: pages dropped and given back, time reported; the guest is gone', async (t) => {
  const hv = hypervisor(t);
  const g = hv.create({ name: 'gone', memoryBytes: 4 * G });
  const indexes = [0, 1, 64, 5000, g.pages - 1];
  g.writePages(indexes.map((index) => ({ index, bytes: randomBytes(PAGE_SIZE) })));
  // Live views of the storage (inside the simulator), to see what the scrub leaves in it.
  const views = indexes.map((i) => hv.guest('gone')!.memory.view(i)!);
  t.ok(views.every((v) => v.some((b) => b !== 0)), 'written pages hold data');
  const resident = g.residentBytes;
  t.equal(resident, 4 * CHUNK_BYTES, 'four chunks (0 and 1 share one)');
  const states: string[] = [];
  g.on('state', (c) => states.push(`${c.previous.state}->${c.state}`));
  const pending = g.destroy();
  t.equal(g.state, 'destroyed', 'destroyed at once');
  t.equal(g.destroy(), pending, 'a second destroy returns the same promise');
  t.throws(() => hv.create({ name: 'gone', memoryBytes: 8 * M }), { code: ErrorCodes.GUEST_EXISTS }, 'the name is held until the scrub is done');
  const report = await pending;
  t.equal(report.bytes, resident, 'every resident byte scrubbed');
  t.equal(report.pages, resident / PAGE_SIZE);
  t.ok(report.scrubMs >= 0 && report.scrubMs < 5000, `scrub took ${report.scrubMs.toFixed(2)} ms`);
  t.ok(views.every((v) => v.length === 0 && v[0] === undefined), 'the storage went back to the kernel: stale views are empty');
  t.equal(g.residentBytes, 0, 'and freed');
  t.equal(hv.guest('gone'), undefined, 'the hypervisor forgot it');
  t.same(states, ['created->destroyed']);
  t.throws(() => g.readPages(0, 1), { code: ErrorCodes.GUEST_STATE });
  t.throws(() => g.writePages([]), { code: ErrorCodes.GUEST_STATE });
  t.throws(() => g.enableDirtyLog(), { code: ErrorCodes.GUEST_STATE });
  await t.rejects(g.digest(), { code: ErrorCodes.GUEST_STATE });
  const again = hv.create({ name: 'gone', memoryBytes: 8 * M });
  t.equal(again.readPages(0, 1)[0]!.bytes, null, 'the name is free again, with clean memory');
});
