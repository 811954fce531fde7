/**
 * Guest memory: a nominal size in 8 KiB pages, stored sparsely, with a dirty page log.
 *
 * Storage. Pages live in chunks of 64 pages (512 KiB), each one zero-filled view
 * handed out the first time one of its pages is written with something other than
 * zeros. A page whose chunk does not exist reads as zero, so a 16G guest that touches
 * 64M holds about 64M of chunks (plus two bitmaps of one bit per page, which the
 * kernel only backs where they are written). Chunks are kept in a Map keyed by chunk
 * number: nothing is allocated per page or per chunk up front, whatever the nominal
 * size (up to MAX_GUEST_PAGES).
 *
 * Slabs. Chunks are carved, in the order they are needed, from slabs of SLAB_BYTES:
 * resizable ArrayBuffers, which V8 maps directly from the kernel (not through malloc)
 * and whose pages the kernel backs only once written. Shrinking a slab to 0 hands its
 * pages back to the kernel at once; plain Buffers would be freed by the collector,
 * whenever it runs, into malloc's heap, which keeps them (glibc does not return freed
 * 512K blocks once its mmap threshold has grown), so a destroyed 4G guest would stay in
 * the agent's RSS. Views of a released slab have length 0: stale readers see nothing.
 *
 * Budget. Every chunk is charged to the guest's BudgetAccount (budget.ts) before it is
 * allocated; a chunk the budget refuses is not allocated and the write fails.
 *
 * Zero pages. A page is "zero" when all its bytes are 0, whether it was never written
 * or written with zeros. Readers get a zero marker (null) instead of bytes for it; the
 * digest leaves it out; writing zeros into a page whose chunk does not exist allocates
 * nothing (the page already reads as zero) but still counts as a write (dirty log,
 * touched pages).
 *
 * Dirty log. One bit per page in a Uint32Array (2M pages: 64K words), plus a summary
 * of one bit per dirty-log word (2M pages: 2K words), set together on every write
 * while the log is enabled. Read-and-clear walks the summary, visits only the words
 * that have a bit set, and returns the page indexes in ascending order; a clean 2M-page
 * guest costs a walk of 2K words. A running count of set bits sizes the answer exactly.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BudgetAccount } from './budget.ts';

/** Bytes per page (the sun4v base page size). */
export const PAGE_SIZE = 8192;
/** log2(PAGE_SIZE). */
export const PAGE_SHIFT = 13;
/** Pages per storage chunk: a chunk is one Buffer of CHUNK_PAGES * PAGE_SIZE = 512 KiB. */
export const CHUNK_PAGES = 64;
export const CHUNK_BYTES = CHUNK_PAGES * PAGE_SIZE;
/** Largest guest: 2^31 pages (16 TiB), so page indexes fit an int32 and a Uint32Array. */
export const MAX_GUEST_PAGES = 2 ** 31;
/**
 * Chunks are carved from slabs of this size (16 chunks). Small enough that releasing
 * one (giving its pages back to the kernel) takes a millisecond or two; large enough
 * that a 16G guest uses 2,048 mappings, far below the kernel's 65,530 per process.
 */
export const SLAB_BYTES = 8 * 2 ** 20;

/** One page of zeros, to compare against (never written). */
export const ZERO_PAGE: Buffer = Buffer.alloc(PAGE_SIZE);

/**
 * True when the page at `off` in `chunk` is all zeros. Pages with data usually show it in
 * their first bytes, so those are looked at before comparing the whole page (memcmp).
 */
function zeroAt(chunk: Buffer, off: number): boolean {
  for (let i = off; i < off + 16; i++) if (chunk[i] !== 0) return false;
  return ZERO_PAGE.compare(chunk, off, off + PAGE_SIZE) === 0;
}

/** ES2024's resizable ArrayBuffer (Node 20 has it; the TypeScript lib here predates it). */
interface Slab extends ArrayBuffer {
  readonly resizable: boolean;
  resize(byteLength: number): void;
}
const Slab = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => Slab;

/** How long one synchronous slice of a long job (digest, scrub) may run before yielding. */
const SLICE_MS = 4;

/** What scrubbing guest memory did. */
export interface ScrubReport {
  /** Wall time from the start of the scrub to the last slab released (slices and yields included). */
  scrubMs: number;
  /** Pages of real storage dropped and given back to the kernel (resident pages: chunks * 64, the last chunk maybe less). */
  pages: number;
  /** The same in bytes. */
  bytes: number;
}

export class GuestMemory {
  /** Nominal size in pages. */
  readonly pages: number;
  private readonly chunks = new Map<number, Buffer>();
  private resident = 0;
  /** Slabs the chunks are carved from; the last one has room from `slabUsed` on. */
  private slabs: Slab[] = [];
  private slabUsed = 0;
  /** One bit per page ever written since creation (or the last scrub). */
  private touched: Uint32Array;
  private touchedCount = 0;
  /** Dirty log: one bit per page written since the last read; null while disabled. */
  private dirty: Uint32Array | null = null;
  /** One bit per word of `dirty` that may be non-zero. */
  private summary: Uint32Array | null = null;
  private dirtyCount = 0;

  constructor(
    pages: number,
    /** Where chunks are charged (the hypervisor's memory budget); none: unlimited. */
    private readonly account?: BudgetAccount,
  ) {
    if (!Number.isSafeInteger(pages) || pages <= 0 || pages > MAX_GUEST_PAGES) {
      throw new RangeError(`guest memory of ${pages} pages: expected 1 to ${MAX_GUEST_PAGES}`);
    }
    this.pages = pages;
    this.touched = new Uint32Array(Math.ceil(pages / 32));
  }

  /** Bytes of page storage allocated (chunks), not the nominal size. */
  get residentBytes(): number {
    return this.resident;
  }

  /** Number of allocated chunks. */
  get chunkCount(): number {
    return this.chunks.size;
  }

  /** Distinct pages written at least once (with any content, zeros included). */
  get touchedPages(): number {
    return this.touchedCount;
  }

  /**
   * The pages written at least once, ascending (what a migration's first pass sends).
   * With `into` (at least touchedPages long) the answer is a view of it.
   */
  touchedIndexes(into?: Uint32Array): Uint32Array {
    const out = into && into.length >= this.touchedCount ? into : new Uint32Array(this.touchedCount);
    const touched = this.touched;
    let n = 0;
    for (let w = 0; w < touched.length; w++) {
      let bits = touched[w]!;
      while (bits !== 0) {
        const low = bits & -bits;
        out[n++] = w * 32 + (31 - Math.clz32(low));
        bits ^= low;
      }
    }
    return out.subarray(0, n);
  }

  // -------------------------------------------------------------------------------------------
  // Pages. Callers check ranges (the guest does, with typed errors); these assume 0 <= index < pages.

  /** True when the page holds only zeros (never written, or written with zeros). */
  isZero(index: number): boolean {
    return this.nonZero(index) === null;
  }

  /**
   * A live view of the page when it holds something other than zeros, else null. Pages
   * never written are answered from the touched bitmap without reading their storage (so
   * the kernel does not have to map the untouched parts of a chunk).
   */
  nonZero(index: number): Buffer | null {
    if ((this.touched[index >>> 5]! & (1 << (index & 31))) === 0) return null;
    const chunk = this.chunks.get(Math.floor(index / CHUNK_PAGES));
    if (chunk === undefined) return null;
    const off = (index % CHUNK_PAGES) * PAGE_SIZE;
    return zeroAt(chunk, off) ? null : chunk.subarray(off, off + PAGE_SIZE);
  }

  /**
   * A live view of the page's storage, or null when its chunk does not exist (the page is
   * zero). The view changes as the page is written and is empty (length 0) once scrub()
   * has given the storage back: copy it to keep it.
   */
  view(index: number): Buffer | null {
    const chunk = this.chunks.get(Math.floor(index / CHUNK_PAGES));
    if (chunk === undefined) return null;
    const off = (index % CHUNK_PAGES) * PAGE_SIZE;
    return chunk.subarray(off, off + PAGE_SIZE);
  }

  /**
   * The chunk holding page `index`, allocated if need be. Throws GUEST_MEMORY_BUDGET,
   * with nothing changed, when a new chunk would pass the budget.
   */
  private chunkFor(index: number): Buffer {
    const c = Math.floor(index / CHUNK_PAGES);
    let chunk = this.chunks.get(c);
    if (chunk === undefined) {
      const bytes = Math.min(CHUNK_PAGES, this.pages - c * CHUNK_PAGES) * PAGE_SIZE;
      this.account?.allocate(bytes);
      chunk = this.carve(bytes);
      this.chunks.set(c, chunk);
      this.resident += bytes;
    }
    return chunk;
  }

  /** `bytes` of zeros from the current slab, or from a new one. */
  private carve(bytes: number): Buffer {
    let slab = this.slabs.at(-1);
    if (slab === undefined || this.slabUsed + bytes > slab.byteLength) {
      // No larger than the guest could ever use; zero-filled by the kernel, backed only once written.
      const size = Math.min(SLAB_BYTES, this.pages * PAGE_SIZE);
      slab = new Slab(size, { maxByteLength: size });
      this.slabs.push(slab);
      this.slabUsed = 0;
    }
    const chunk = Buffer.from(slab, this.slabUsed, bytes);
    this.slabUsed += bytes;
    return chunk;
  }

  /** Bytes of new chunks that writing these pages would allocate (zero pages allocate nothing). */
  storageFor(pages: readonly { index: number; bytes: Uint8Array | null }[]): number {
    let bytes = 0;
    let seen: Set<number> | undefined;
    for (const p of pages) {
      if (p.bytes === null) continue;
      const c = Math.floor(p.index / CHUNK_PAGES);
      if (this.chunks.has(c) || seen?.has(c)) continue;
      (seen ??= new Set()).add(c);
      bytes += Math.min(CHUNK_PAGES, this.pages - c * CHUNK_PAGES) * PAGE_SIZE;
    }
    return bytes;
  }

  /**
   * Write a page: `bytes` (PAGE_SIZE of them) or, for null, zeros. Copied into the chunk
   * at an offset: on a resizable buffer, making a view per page costs more than the copy.
   * Throws GUEST_MEMORY_BUDGET, with nothing written, when a new chunk would pass the budget.
   */
  write(index: number, bytes: Uint8Array | null): void {
    if (bytes === null) this.zero(index);
    else {
      const chunk = this.chunkFor(index);
      this.noteWrite(index);
      chunk.set(bytes, (index % CHUNK_PAGES) * PAGE_SIZE);
    }
  }

  /** Write zeros into a page; allocates nothing when its chunk does not exist. */
  zero(index: number): void {
    const view = this.view(index);
    if (view === null) this.noteWrite(index);
    else {
      this.noteWrite(index);
      view.fill(0);
    }
  }

  /**
   * Copy a page into `target` at `offset` and return true, or return false without
   * touching `target` when the page is zero.
   */
  readInto(index: number, target: Uint8Array, offset = 0): boolean {
    if ((this.touched[index >>> 5]! & (1 << (index & 31))) === 0) return false;
    const chunk = this.chunks.get(Math.floor(index / CHUNK_PAGES));
    if (chunk === undefined) return false;
    const off = (index % CHUNK_PAGES) * PAGE_SIZE;
    if (zeroAt(chunk, off)) return false;
    chunk.copy(target, offset, off, off + PAGE_SIZE);
    return true;
  }

  /** Record a write of page `index`: touched bit, and dirty bit when the log is on. */
  private noteWrite(index: number): void {
    const w = index >>> 5;
    const bit = 1 << (index & 31);
    const touched = this.touched;
    if ((touched[w]! & bit) === 0) {
      touched[w]! |= bit;
      this.touchedCount++;
    }
    const dirty = this.dirty;
    if (dirty !== null && (dirty[w]! & bit) === 0) {
      dirty[w]! |= bit;
      this.dirtyCount++;
      this.summary![w >>> 5]! |= 1 << (w & 31);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Dirty log

  get dirtyLogEnabled(): boolean {
    return this.dirty !== null;
  }

  /** Pages written since the log was enabled or last read (0 while disabled). */
  get dirtyPageCount(): number {
    return this.dirtyCount;
  }

  /** Start logging writes, with an empty log. Already enabled: nothing changes (the log is kept). */
  enableDirtyLog(): void {
    if (this.dirty !== null) return;
    const words = Math.ceil(this.pages / 32);
    this.dirty = new Uint32Array(words);
    this.summary = new Uint32Array(Math.ceil(words / 32));
    this.dirtyCount = 0;
  }

  /** Stop logging and drop the log. Already disabled: nothing happens. */
  disableDirtyLog(): void {
    this.dirty = null;
    this.summary = null;
    this.dirtyCount = 0;
  }

  /**
   * The pages written since the log was enabled or last read, ascending, and an empty
   * log. The caller must check that the log is enabled (it returns nothing otherwise).
   * With `into` (at least dirtyPageCount long) the indexes are written there and a view
   * of it returned: no allocation, and no page faults on fresh memory, which is most of
   * the cost when millions of pages are dirty.
   */
  readAndClearDirty(into?: Uint32Array): Uint32Array {
    const dirty = this.dirty;
    const summary = this.summary;
    if (dirty === null || summary === null) return new Uint32Array(0);
    const out = into !== undefined && into.length >= this.dirtyCount ? into : new Uint32Array(this.dirtyCount);
    let n = 0;
    for (let s = 0; s < summary.length; s++) {
      let sw = summary[s]!;
      if (sw === 0) continue;
      summary[s] = 0;
      while (sw !== 0) {
        const sLow = sw & -sw;
        sw ^= sLow;
        const wi = s * 32 + 31 - Math.clz32(sLow);
        let w = dirty[wi]!;
        if (w === 0) continue;
        dirty[wi] = 0;
        const base = wi * 32;
        while (w !== 0) {
          const low = w & -w;
          w ^= low;
          out[n++] = base + 31 - Math.clz32(low);
        }
      }
    }
    this.dirtyCount = 0;
    return n === out.length ? out : out.subarray(0, n);
  }

  // -------------------------------------------------------------------------------------------
  // Digest and scrub

  /**
   * Hex SHA-256 over the non-zero pages in ascending index order, each fed to the hash as
   * its index (8 bytes, unsigned big-endian) followed by its PAGE_SIZE bytes of content:
   *
   *   digest = SHA-256( for each page p with content(p) != zeros, ascending p:
   *                       uint64be(p) || content(p) )
   *
   * Two memories with the same content give the same digest whatever their history:
   * zero pages (never written, written with zeros, or zeroed again) are absent from it,
   * and the nominal size is not part of it. Runs in slices of a few milliseconds with
   * yields to the event loop between them; pages written meanwhile may or may not be
   * seen, so the digest of a running guest is not a snapshot: take it while the guest is
   * suspended (or not yet started) to compare.
   */
  async digest(): Promise<string> {
    const hash = createHash('sha256');
    const header = Buffer.alloc(8);
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    let sliceStart = performance.now();
    for (const c of keys) {
      const chunk = this.chunks.get(c);
      if (chunk === undefined) continue; // scrubbed meanwhile
      const touched = this.touched;
      for (let off = 0, index = c * CHUNK_PAGES; off < chunk.length; off += PAGE_SIZE, index++) {
        if ((touched[index >>> 5]! & (1 << (index & 31))) === 0) continue; // never written: zero
        if (zeroAt(chunk, off)) continue;
        const page = chunk.subarray(off, off + PAGE_SIZE);
        header.writeUInt32BE(Math.floor(index / 2 ** 32), 0);
        header.writeUInt32BE(index >>> 0, 4);
        hash.update(header);
        hash.update(page);
      }
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
    return hash.digest('hex');
  }

  /**
   * Drop every allocated page and give its storage back to the kernel (each slab shrunk
   * to 0: the kernel takes the pages, and zeroes them before any other use, so no byte
   * of the guest survives it), in slices of a few milliseconds; the memory is empty
   * afterwards (all pages read as zero, no touched pages, dirty log disabled) and its
   * budget account claims nothing. Zeroing the pages first would only make the kernel
   * back the untouched parts of each chunk before discarding them.
   */
  async scrub(): Promise<ScrubReport> {
    const start = performance.now();
    const bytes = this.resident;
    const slabs = this.slabs;
    // From here on every page reads as zero; stale views of the chunks read nothing once their slab is released.
    this.chunks.clear();
    this.resident = 0;
    this.slabs = [];
    this.slabUsed = 0;
    this.touched = new Uint32Array(this.touched.length);
    this.touchedCount = 0;
    this.disableDirtyLog();
    let sliceStart = start;
    for (const slab of slabs) {
      if (slab.resizable) slab.resize(0);
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
    this.account?.releaseAll();
    return { scrubMs: performance.now() - start, pages: bytes / PAGE_SIZE, bytes };
  }
}
