/**
 * The fuzzing harness of the wire-format fuzz files (test/fuzz-*.test.ts), in the house
 * style of test/fuzz.test.ts: every property runs with a fixed seed printed in its test
 * name (reproduce or explore with FUZZ_SEED=<n>, multiply the runs with FUZZ_SCALE=<k>),
 * oracles throw, each case is bounded in time, and the file ends with a test that counts
 * the cases it ran. Test names carry their target in brackets (`[xmpp-stream] ...`):
 * scripts/fuzz.mjs adds them up per target from tap's output.
 *
 * Two more oracles than the codec's file needs, because these parsers sit on sockets:
 * a property may bound the memory left behind by its whole batch (garbage collected
 * before and after, so what is counted is what the parser kept), and no promise may be
 * rejected without a handler while the file runs.
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Test } from 'tap';

type Tap = Test;

export const SCALE = process.env.FUZZ_SCALE ? Number(process.env.FUZZ_SCALE) : 1;

/** An oracle's verdict: the case broke a promise of the module under test. */
export class InvariantError extends Error {}

export function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new InvariantError(what);
}

/** JSON of anything, Buffers and Maps included (for comparing transcripts). */
export function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? [...x] : typeof x === 'bigint' ? `${x}n` : x));
}

export function sameJson(actual: unknown, expected: unknown, what: string): void {
  const a = show(actual);
  const e = show(expected);
  if (a === e) return;
  // Where they part, with some context: transcripts are long and mostly equal.
  let at = 0;
  while (at < a.length && a[at] === e[at]) at++;
  const from = Math.max(0, at - 300);
  throw new InvariantError(`${what} (from character ${at})\n  actual:   …${a.slice(from, at + 500)}\n  expected: …${e.slice(from, at + 500)}`);
}

// `--expose-gc` for this process only, so that memory is measured after a collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and buffers in use after a full collection. */
export function liveBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

/** Cut `bytes` at the given offsets (any order, duplicates and out-of-range ones ignored). */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

/** Up to 12 cut points anywhere (taken modulo the input's length), now and then a run of 1-byte chunks. */
export const cutsArb: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.nat({ max: 1_000_000 }), { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.tuple(fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 64 })).map(([at, n]) => Array.from({ length: n }, (_, i) => at + i)) },
);

export interface FuzzOptions {
  /** Milliseconds one case may take (default 250). */
  caseMs?: number;
  /** Milliseconds the whole property may take at scale 1 (default 15 s), multiplied by FUZZ_SCALE. */
  budgetMs?: number;
  /** Bytes of memory the whole batch may leave behind after a collection. */
  heapBytes?: number;
}

export interface FileOptions {
  /** Default seed of the file (FUZZ_SEED overrides it). */
  seed: number;
  /** Cases the file must run at scale 1. */
  minCases: number;
  /** Milliseconds the whole file may take at scale 1. */
  fileMs: number;
}

/**
 * The fuzz functions of one test file. `fuzz` runs a synchronous property, `fuzzAsync`
 * an asynchronous one; both count their cases under `target`; `count` adds cases run by
 * hand (every split point of an input, say). `finish` adds the closing test.
 */
export function fuzzFile(t: Tap, opts: FileOptions) {
  const base = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : opts.seed;
  const started = performance.now();
  const totals = new Map<string, number>();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);

  const add = (target: string, n: number) => totals.set(target, (totals.get(target) ?? 0) + n);

  // The bound is on the CPU time the case took, and a case over it runs once more before it
  // fails: on a loaded machine a case may wait for a core, or meet a collection of the
  // garbage of the cases before it. An input that is slow to handle is slow twice.
  const cpuMs = (since: NodeJS.CpuUsage) => {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1000;
  };

  function timed<A extends unknown[]>(caseMs: number, predicate: (...a: A) => void): (...a: A) => void {
    return (...a: A) => {
      let start = process.cpuUsage();
      predicate(...a);
      if (cpuMs(start) < caseMs) return;
      start = process.cpuUsage();
      predicate(...a);
      const ms = cpuMs(start);
      check(ms < caseMs, `one case took ${ms.toFixed(1)} ms of CPU twice running (bound ${caseMs} ms)`);
    };
  }

  function timedAsync<A extends unknown[]>(caseMs: number, predicate: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
    return async (...a: A) => {
      let start = process.cpuUsage();
      await predicate(...a);
      if (cpuMs(start) < caseMs) return;
      start = process.cpuUsage();
      await predicate(...a);
      const ms = cpuMs(start);
      check(ms < caseMs, `one case took ${ms.toFixed(1)} ms of CPU twice running (bound ${caseMs} ms)`);
    };
  }

  /** FUZZ_ONLY=<text>: run only the properties whose title holds it (for exploring one). */
  const only = process.env.FUZZ_ONLY;

  async function run(t: Tap, name: string, seed: number, runs: number, o: FuzzOptions, go: () => Promise<void> | void): Promise<void> {
    const before = o.heapBytes === undefined ? 0 : liveBytes();
    const start = performance.now();
    try {
      await go();
    } catch (err) {
      // fast-check prints the whole counterexample: a mutated stream can be tens of KB.
      const message = (err as Error).message;
      t.fail(`seed ${seed} (reproduce with FUZZ_SEED=${base}): ${message.length > 6000 ? `${message.slice(0, 1500)} … ${message.slice(-4000)}` : message}`);
      return;
    }
    const ms = performance.now() - start;
    t.pass(`${runs} cases passed in ${ms.toFixed(0)} ms, seed ${seed}`);
    const budget = (o.budgetMs ?? 15_000) * Math.max(1, SCALE);
    t.ok(ms < budget, `${name}: ${ms.toFixed(0)} ms, within ${budget} ms`);
    if (o.heapBytes !== undefined) {
      const grown = liveBytes() - before;
      t.ok(grown < o.heapBytes, `${name}: memory left after ${runs} cases: ${(grown / 2 ** 20).toFixed(1)} MiB (bound ${(o.heapBytes / 2 ** 20).toFixed(0)} MiB)`);
    }
  }

  /** One property as a test of its own: `check` runs fast-check with the seed and the number of runs. */
  function property(target: string, name: string, seedOffset: number, numRuns: number, o: FuzzOptions, check: (seed: number, runs: number) => Promise<void> | void): void {
    const seed = base + seedOffset;
    const runs = Math.max(1, Math.round(numRuns * SCALE));
    const title = `[${target}] ${name}`;
    if (only && !title.includes(only)) return;
    add(target, runs);
    t.test(`${title} (${runs.toLocaleString('en-US')} cases, seed ${seed})`, (t) => run(t, title, seed, runs, o, () => check(seed, runs)));
  }

  return {
    base,
    fuzz<T>(target: string, name: string, seedOffset: number, numRuns: number, arb: fc.Arbitrary<T>, predicate: (v: T) => void, o: FuzzOptions = {}): void {
      property(target, name, seedOffset, numRuns, o, (seed, runs) =>
        fc.assert(fc.property(arb, timed(o.caseMs ?? 250, predicate)), { seed, numRuns: runs, includeErrorInReport: true }),
      );
    },
    fuzzAsync<T>(target: string, name: string, seedOffset: number, numRuns: number, arb: fc.Arbitrary<T>, predicate: (v: T) => Promise<void>, o: FuzzOptions = {}): void {
      property(target, name, seedOffset, numRuns, o, (seed, runs) =>
        fc.assert(fc.asyncProperty(arb, timedAsync(o.caseMs ?? 1000, predicate)), { seed, numRuns: runs, includeErrorInReport: true }),
      );
    },
    /** Cases a test ran by hand (not through fast-check), counted under `target`. */
    count(target: string, n: number): void {
      add(target, n);
    },
    finish(): void {
      t.test('all properties of this file: cases counted, no unhandled rejection, within time', async (t) => {
        const total = [...totals.values()].reduce((a, b) => a + b, 0);
        const per = [...totals].map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ');
        t.ok(total >= opts.minCases * Math.min(1, SCALE), `${total.toLocaleString('en-US')} cases in total (${per})`);
        process.off('unhandledRejection', onUnhandled);
        t.same(unhandled.map((r) => (r instanceof Error ? r.stack : String(r))), [], 'no promise was rejected without a handler');
        const ms = performance.now() - started;
        t.ok(ms < opts.fileMs * Math.max(1, SCALE), `the file ran in ${ms.toFixed(0)} ms (bound ${opts.fileMs * Math.max(1, SCALE)} ms)`);
      });
    },
  };
}
