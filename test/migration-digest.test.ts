/**
 * The running digest of migration (agent/migration/digest.ts): kept page by page as
 * pages are written, it equals the digest computed from scratch after random writes,
 * rewrites and zeroing; it depends on every byte and on where each page is.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { xxh64 } from '@node-rs/xxhash';
import type { Guest, PageData } from '../agent/hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { digestOfGuest, RunningDigest } from '../agent/migration/digest.ts';

const M = 2 ** 20;

function setup(t: Test, memoryBytes = 64 * M): Guest {
  const hv = new SimHypervisor();
  t.teardown(() => hv.close());
  return hv.create({ name: 'g', memoryBytes });
}

/** Write pages to the guest and to the running digest, as a migration target does. */
function write(guest: Guest, digest: RunningDigest, pages: PageData[]): void {
  guest.writePages(pages);
  for (const p of pages) digest.record(p.index, p.bytes);
}

t.test('the running digest equals the digest from scratch after random writes, rewrites and zeroing', async (t) => {
  const guest = setup(t);
  const digest = new RunningDigest();
  t.equal(digest.value, 0n, 'empty memory: 0');
  t.equal(await digestOfGuest(guest), 0n);
  // mulberry32: reproducible pages, kinds and places.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return Math.floor((((x ^ (x >>> 14)) >>> 0) / 2 ** 32) * n);
  };
  for (let round = 0; round < 20; round++) {
    const pages: PageData[] = [];
    const used = new Set<number>();
    for (let i = 0; i < 200; i++) {
      // Pages cluster in the first 2,000 so that rewrites and zeroing of written pages happen.
      const index = rand(5) === 0 ? rand(guest.pages) : rand(2000);
      if (used.has(index)) continue;
      used.add(index);
      const kind = rand(10);
      let bytes: Uint8Array | null;
      if (kind === 0) bytes = null; // zeroed
      else if (kind === 1) bytes = new Uint8Array(PAGE_SIZE); // data page of zeros: a zero page
      else bytes = randomBytes(PAGE_SIZE);
      pages.push({ index, bytes });
    }
    write(guest, digest, pages);
    t.equal(digest.value, await digestOfGuest(guest), `round ${round}`);
  }
  t.ok(digest.storedPages > 1000, `pages stored: ${digest.storedPages}`);
  t.equal(digest.hex.length, 16);

  // Zero every page again: back to 0, nothing stored.
  const all: PageData[] = [];
  for (let p = 0; p < guest.pages; p++) all.push({ index: p, bytes: null });
  write(guest, digest, all);
  t.equal(digest.value, 0n);
  t.equal(digest.storedPages, 0);
  t.equal(await digestOfGuest(guest), 0n);
});

t.test('the digest is the sum mod 2^64 of xxh64(page, seed = index) over the pages with data', async (t) => {
  const guest = setup(t);
  const digest = new RunningDigest();
  const a = randomBytes(PAGE_SIZE);
  const b = randomBytes(PAGE_SIZE);
  write(guest, digest, [
    { index: 3, bytes: a },
    { index: 8000, bytes: b },
    { index: 7, bytes: null },
  ]);
  const expected = (xxh64(a, 3n) + xxh64(b, 8000n)) & ((1n << 64n) - 1n);
  t.equal(digest.value, expected);
  t.equal(await digestOfGuest(guest), expected);
});

t.test('one changed byte, or a page moved, changes the digest', async (t) => {
  const guest = setup(t);
  const digest = new RunningDigest();
  const pages: PageData[] = [];
  for (let i = 0; i < 100; i++) pages.push({ index: i * 3, bytes: randomBytes(PAGE_SIZE) });
  write(guest, digest, pages);
  const before = digest.value;

  const changed = Buffer.from(pages[40]!.bytes!);
  changed[PAGE_SIZE - 1] ^= 1;
  write(guest, digest, [{ index: pages[40]!.index, bytes: changed }]);
  t.not(digest.value, before, 'last byte of one page flipped');
  t.equal(digest.value, await digestOfGuest(guest));

  // Restoring the byte restores the digest: a rewrite replaces the page's hash.
  write(guest, digest, [{ index: pages[40]!.index, bytes: pages[40]!.bytes }]);
  t.equal(digest.value, before);

  // The same two pages swapped: same bytes, other places.
  const other = new RunningDigest();
  other.record(0, pages[1]!.bytes);
  other.record(3, pages[0]!.bytes);
  const same = new RunningDigest();
  same.record(0, pages[0]!.bytes);
  same.record(3, pages[1]!.bytes);
  t.not(other.value, same.value);
});

t.test('a sparse 64G guest costs only its touched pages', async (t) => {
  const guest = setup(t, 64 * 2 ** 30);
  const digest = new RunningDigest();
  const last = guest.pages - 1;
  write(guest, digest, [
    { index: 0, bytes: randomBytes(PAGE_SIZE) },
    { index: last, bytes: randomBytes(PAGE_SIZE) },
  ]);
  t.equal(guest.pages, 8 * 2 ** 20);
  t.equal(digest.storedPages, 2);
  t.equal(digest.value, await digestOfGuest(guest));
});
