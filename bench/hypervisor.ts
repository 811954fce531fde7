/**
 * Simulated hypervisor benchmark: the operations migration leans on, each beside a
 * baseline measured in the same run on the same bytes:
 *
 *   dirty log read-and-clear of a 16G guest (2M pages, 64K bitmap words): all clean,
 *     sparse (1,000 dirty pages), 1 % dirty, all dirty; into a reused answer array and
 *     returning a new one; beside a flat scan of the same words into a reused array (the
 *     same bit extraction without the summary level) and, for reference,
 *     `Uint32Array.fill(0)` of the words (the least any clearing can cost). The pages are
 *     dirtied again, untimed, before each timed read;
 *   page reads (readPages in batches of 64, readPageInto a reused buffer) and page
 *     writes (writePages in batches of 64) over a 64M working set of random content,
 *     beside `Buffer.copy` of the same 8 KiB pieces from/to the same places;
 *   digest of the 64M guest beside one SHA-256 over the same 64M in one Buffer;
 *   scrub of the 64M (its slabs handed back to the kernel, which zeroes them before any
 *     reuse) beside `Buffer.fill(0)` of the same bytes: what zeroing in user space would cost.
 *
 * Environment: BENCH_ROUND_MS (default 400), BENCH_ROUNDS (5), as bench/codec.ts.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { PageData } from '../agent/hypervisor/hypervisor.ts';
import { GuestMemory, PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { consume, figure, median, opsPerSecond, sunk } from './measure.ts';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP_MS = Math.min(300, ROUND_MS);

const GUEST_PAGES = 2 * 2 ** 20; // 16G
const WS_BYTES = 64 * 2 ** 20;
const WS_PAGES = WS_BYTES / PAGE_SIZE;
const BATCH = 64;



// ---------------------------------------------------------------------------------------------
// Timing: bench/measure.ts's method (self-calibrated batches, interleaved rounds, medians).

/** Milliseconds per operation for each function, medians of interleaved rounds. */
const measure = (fns: (() => number)[]): number[] =>
  opsPerSecond(fns, { warmupMs: WARMUP_MS, roundMs: ROUND_MS, rounds: ROUNDS }).map((perSecond) => 1000 / perSecond);

/**
 * Operations that need an untimed setup before each run (re-dirtying pages): each pair is
 * timed alone, repeated for a round, interleaved; milliseconds per operation, medians.
 */
function measureWithSetup(pairs: { setup: () => void; op: () => number }[]): number[] {
  const runOnce = (p: { setup: () => void; op: () => number }) => {
    p.setup();
    const start = performance.now();
    consume(p.op());
    return performance.now() - start;
  };
  for (const p of pairs) {
    const end = performance.now() + WARMUP_MS;
    while (performance.now() < end) runOnce(p);
  }
  const times: number[][] = pairs.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    pairs.forEach((p, i) => {
      const samples: number[] = [];
      const end = performance.now() + ROUND_MS;
      while (performance.now() < end || samples.length < 3) samples.push(runOnce(p));
      times[i]!.push(median(samples));
    });
  }
  return times.map(median);
}

// ---------------------------------------------------------------------------------------------
// Baselines

/** The dirty log without its summary level: visit every word, extract bits, clear. */
function flatReadAndClear(words: Uint32Array, out: Uint32Array): number {
  let n = 0;
  for (let wi = 0; wi < words.length; wi++) {
    let w = words[wi]!;
    if (w === 0) continue;
    words[wi] = 0;
    const base = wi * 32;
    while (w !== 0) {
      const low = w & -w;
      w ^= low;
      out[n++] = base + 31 - Math.clz32(low);
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------

interface Row {
  figure: string;
  value: string;
  baseline: string;
  /** Our time over the baseline's for the same work. */
  ratio: number;
}

const us = (ms: number) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`);
const mbps = (bytes: number, ms: number) => `${((bytes / ms) * 1000 / 1e6).toFixed(0)} MB/s`;

function printRows(rows: Row[]): void {
  const head = ['figure', 'ours', 'baseline (same run)', 'time ratio'];
  const ratio = (r: Row) => (Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-');
  const cells = rows.map((r) => [r.figure, r.value, r.baseline, ratio(r)]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(head));
  for (const c of cells) console.log(line(c));
  console.log('');
  console.log('Markdown (figure | value | baseline | ratio):');
  console.log('');
  console.log('| figure | value | baseline (same run) | ratio |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.figure} | ${r.value} | ${r.baseline} | ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x time` : '-'} |`);
}

function dirtyLogRows(): Row[] {
  const rows: Row[] = [];
  const memory = new GuestMemory(GUEST_PAGES);
  memory.enableDirtyLog();
  const words = new Uint32Array(GUEST_PAGES / 32);
  const out = new Uint32Array(GUEST_PAGES);
  const into_ = new Uint32Array(GUEST_PAGES);
  const clearWords = new Uint32Array(GUEST_PAGES / 32);

  const cases: { name: string; pages: Uint32Array }[] = [];
  const pick = (count: number) => {
    const set = new Set<number>();
    let x = 12345;
    while (set.size < count) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      set.add(x % GUEST_PAGES);
    }
    return Uint32Array.from(set);
  };
  cases.push({ name: 'all clean', pages: new Uint32Array(0) });
  cases.push({ name: '1,000 dirty pages', pages: pick(1000) });
  cases.push({ name: '1 % dirty (20,972 pages)', pages: pick(Math.round(GUEST_PAGES / 100)) });
  cases.push({ name: 'all dirty (2,097,152 pages)', pages: Uint32Array.from({ length: GUEST_PAGES }, (_, i) => i) });

  for (const c of cases) {
    // Dirty the pages: zero writes mark the log without allocating storage.
    const dirtyOurs = () => {
      for (let i = 0; i < c.pages.length; i++) memory.zero(c.pages[i]!);
    };
    const dirtyFlat = () => {
      for (let i = 0; i < c.pages.length; i++) {
        const p = c.pages[i]!;
        words[p >>> 5]! |= 1 << (p & 31);
      }
    };
    dirtyOurs();
    const check = memory.readAndClearDirty();
    if (check.length !== c.pages.length) throw new Error(`bench: dirty log returned ${check.length} of ${c.pages.length} pages`);
    const [into, fresh, flat, fill] =
      c.pages.length === 0
        ? measure([
            () => memory.readAndClearDirty(into_).length,
            () => memory.readAndClearDirty().length,
            () => flatReadAndClear(words, out),
            () => (clearWords.fill(0), 1),
          ])
        : measureWithSetup([
            { setup: dirtyOurs, op: () => memory.readAndClearDirty(into_).length },
            { setup: dirtyOurs, op: () => memory.readAndClearDirty().length },
            { setup: dirtyFlat, op: () => flatReadAndClear(words, out) },
            { setup: () => {}, op: () => (clearWords.fill(0), 1) },
          ]);
    rows.push({
      figure: `dirty log read-and-clear, 2M pages, ${c.name}`,
      value: `${us(into!)} (into a reused array; ${us(fresh!)} returning a new one)`,
      baseline: `${us(flat!)} (flat scan of the 64K words into a reused array); Uint32Array.fill(0) of the words: ${us(fill!)}`,
      ratio: into! / flat!,
    });
    figure({ figure: `dirty log read-and-clear, 2M pages, ${c.name}`, value: into! * 1000, unit: 'µs', baseline: 'flat scan of the 64K bitmap words', baselineValue: flat! * 1000 });
  }
  return rows;
}

async function pageRows(): Promise<Row[]> {
  const hv = new SimHypervisor();
  try {
    const source = hv.create({ name: 'bench-src', memoryBytes: GUEST_PAGES * PAGE_SIZE, workload: { workingSet: WS_BYTES, dirtyRate: 0, fill: 'random' } });
    source.start({ autoBoot: true, os: 's11' });
    const fillStart = performance.now();
    await source.whenFilled();
    const fillMs = performance.now() - fillStart;
    source.suspend();
    const target = hv.create({ name: 'bench-dst', memoryBytes: GUEST_PAGES * PAGE_SIZE });
    const views = Array.from({ length: WS_PAGES }, (_, i) => source.memory.view(i)!);
    const into = Buffer.allocUnsafe(BATCH * PAGE_SIZE);
    const flatTarget = Buffer.alloc(WS_BYTES);

    // Batches for writes, read once (untimed): what a migration target receives.
    const batches: PageData[][] = [];
    for (let first = 0; first < WS_PAGES; first += BATCH) batches.push(source.readPages(first, BATCH));
    for (const b of batches) target.writePages(b); // storage allocated: the timed writes overwrite
    const [sd, td] = [await source.digest(), await target.digest()];
    if (sd !== td) throw new Error('bench: the copy differs from the source');

    let readAt = 0;
    let writeAt = 0;
    let copyAt = 0;
    const [readBatch, readInto, copyOut, copyOutFresh] = measure([
      () => {
        const pages = source.readPages(readAt, BATCH);
        readAt = (readAt + BATCH) % WS_PAGES;
        return pages.length;
      },
      () => {
        for (let i = 0; i < BATCH; i++) source.readPageInto(readAt + i, into, i * PAGE_SIZE);
        readAt = (readAt + BATCH) % WS_PAGES;
        return 1;
      },
      () => {
        for (let i = 0; i < BATCH; i++) views[copyAt + i]!.copy(into, i * PAGE_SIZE);
        copyAt = (copyAt + BATCH) % WS_PAGES;
        return 1;
      },
      () => {
        const fresh = Buffer.from(new ArrayBuffer(BATCH * PAGE_SIZE));
        for (let i = 0; i < BATCH; i++) views[copyAt + i]!.copy(fresh, i * PAGE_SIZE);
        copyAt = (copyAt + BATCH) % WS_PAGES;
        return fresh.length;
      },
    ]) as [number, number, number, number];
    const [write, copyIn] = measure([
      () => {
        target.writePages(batches[writeAt]!);
        writeAt = (writeAt + 1) % batches.length;
        return 1;
      },
      () => {
        const b = batches[copyAt / BATCH]!;
        for (let i = 0; i < BATCH; i++) (b[i]!.bytes as Buffer).copy(flatTarget, (copyAt + i) * PAGE_SIZE);
        copyAt = (copyAt + BATCH) % WS_PAGES;
        return 1;
      },
    ]) as [number, number];
    const batchBytes = BATCH * PAGE_SIZE;
    const rows: Row[] = [
      {
        figure: `page read, readPages (batches of ${BATCH}, 64M random working set)`,
        value: mbps(batchBytes, readBatch),
        baseline: `${mbps(batchBytes, copyOut)} (Buffer.copy of the same 8 KiB pages); into a new 512K Buffer per batch: ${mbps(batchBytes, copyOutFresh)}`,
        ratio: readBatch / copyOut,
      },
      {
        figure: 'page read, readPageInto a reused buffer',
        value: mbps(batchBytes, readInto),
        baseline: `${mbps(batchBytes, copyOut)} (Buffer.copy of the same 8 KiB pages)`,
        ratio: readInto / copyOut,
      },
      {
        figure: `page write, writePages (batches of ${BATCH})`,
        value: mbps(batchBytes, write),
        baseline: `${mbps(batchBytes, copyIn)} (Buffer.copy of the same pages into one Buffer)`,
        ratio: write / copyIn,
      },
    ];

    // Digest beside one SHA-256 over the same bytes; scrub beside fill(0).
    const flat = Buffer.concat(views);
    const digestTimes: number[] = [];
    const hashTimes: number[] = [];
    for (let r = 0; r < Math.max(3, ROUNDS); r++) {
      let start = performance.now();
      consume((await source.digest()).length);
      digestTimes.push(performance.now() - start);
      start = performance.now();
      consume(createHash('sha256').update(flat).digest('hex').length);
      hashTimes.push(performance.now() - start);
    }
    const [digest, hash] = [median(digestTimes), median(hashTimes)];
    rows.push({
      figure: 'digest, 64M of non-zero pages in a 16G guest',
      value: `${mbps(WS_BYTES, digest)} (${us(digest)})`,
      baseline: `${mbps(WS_BYTES, hash)} (SHA-256 of the same 64M in one Buffer)`,
      ratio: digest / hash,
    });
    const fillTimes: number[] = [];
    for (let r = 0; r < Math.max(3, ROUNDS); r++) {
      const start = performance.now();
      flat.fill(0);
      fillTimes.push(performance.now() - start);
    }
    const report = await target.destroy();
    const zeroFill = median(fillTimes);
    rows.push({
      figure: 'scrub, 64M resident (slabs released to the kernel)',
      value: `${mbps(report.bytes, report.scrubMs)} (${us(report.scrubMs)})`,
      baseline: `${mbps(WS_BYTES, zeroFill)} (Buffer.fill(0) of 64M)`,
      ratio: report.scrubMs / zeroFill,
    });
    rows.push({
      figure: 'workload fill, 64M random (paced: 4 ms per 10 ms tick)',
      value: `${mbps(WS_BYTES, fillMs)} wall (${us(fillMs)})`,
      baseline: 'n/a (paced on purpose)',
      ratio: Number.NaN,
    });
    // For bench/results.json: the same figures as numbers (rates in MB/s, times in ms).
    const rate = (bytes: number, ms: number) => (bytes / ms) * 1000 / 1e6;
    const copyOutName = 'Buffer.copy of the same 8 KiB pages';
    figure({ figure: rows[0]!.figure, value: rate(batchBytes, readBatch), unit: 'MB/s', baseline: copyOutName, baselineValue: rate(batchBytes, copyOut) });
    figure({ figure: rows[1]!.figure, value: rate(batchBytes, readInto), unit: 'MB/s', baseline: copyOutName, baselineValue: rate(batchBytes, copyOut) });
    figure({ figure: rows[2]!.figure, value: rate(batchBytes, write), unit: 'MB/s', baseline: 'Buffer.copy of the same pages into one Buffer', baselineValue: rate(batchBytes, copyIn) });
    figure({ figure: rows[3]!.figure, value: rate(WS_BYTES, digest), unit: 'MB/s', baseline: 'SHA-256 of the same 64M in one Buffer', baselineValue: rate(WS_BYTES, hash) });
    figure({ figure: rows[4]!.figure, value: report.scrubMs, unit: 'ms', baseline: 'Buffer.fill(0) of 64M', baselineValue: zeroFill });
    return rows;
  } finally {
    await hv.close();
  }
}

export async function run(): Promise<void> {
  const started = performance.now();
  console.log(`hypervisor: node ${process.version}, ${ROUNDS} rounds of ${ROUND_MS} ms each side, median shown; ratio = our time / baseline time`);
  const rows = [...dirtyLogRows(), ...(await pageRows())];
  printRows(rows);
  console.log('');
  console.log(`hypervisor: done in ${((performance.now() - started) / 1000).toFixed(1)} s${sunk() ? '' : ' (sink 0?)'}`);
}
