/**
 * The simulated guest's workload: what its OS does to memory.
 *
 * - Fill: when the OS boots (and when the working set grows), it writes every page of
 *   the working set once, in index order from page 0, as an OS loading its data would.
 * - Rewrite: once the working set is filled, it rewrites pseudo-random pages inside it
 *   at the dirty rate (bytes/s) times (1 - throttle).
 *
 * Content (`sim-fill`): `zero` writes zeros (the pages count as written and dirty, but
 * read as zero pages and hash as absent; they allocate no storage), `text` writes
 * compressible ASCII (about 3.5x per page with deflate), `random` writes xorshift32 output
 * (incompressible). Every written page starts with a stamp of its index and a write
 * generation, so a rewrite always changes the page (except with `zero`).
 *
 * Pacing. The workload runs on the event loop, in steps given by a WorkloadPacer: every
 * tick (10 ms) the pacer shares a CPU budget (4 ms) among the active workloads, so all
 * the guests together use at most about 40 % of one core and the agent stays responsive.
 * A step earns rate * elapsed of credit (elapsed capped at 250 ms, so a stalled loop does
 * not cause a burst) and writes that many pages or until its deadline; credit it could
 * not spend is carried, up to half a second's worth. The fill is bounded the same way
 * (by time only), so a 16G working set fills in slices. The page choice and the content
 * are deterministic for a seed; only the timing varies.
 *
 * The rate achieved is measured, not assumed: stats() reports pages written per second
 * over the last second (fill and rewrite together, and rewrites alone).
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { PAGE_SIZE, type GuestMemory } from './memory.ts';

export type FillKind = 'zero' | 'text' | 'random';

export interface WorkloadConfig {
  /** Bytes of memory, from the start of guest memory, that the OS uses (rounded up to pages, capped at the guest size). */
  workingSet: number;
  /** Bytes per second the OS rewrites inside its working set once it is filled. */
  dirtyRate: number;
  fill: FillKind;
}

/** contract.md "Simulated guests": sim-working-set 64M, sim-dirty-rate 0; sim-fill is our choice. */
export const DEFAULT_WORKLOAD: Readonly<WorkloadConfig> = { workingSet: 64 * 2 ** 20, dirtyRate: 0, fill: 'text' };

/**
 * stopped: the OS is not running (created, suspended, `ok` prompt, debugger, destroyed);
 * filling: writing the working set once; rewriting: dirtying at the rate; idle: filled, rate 0.
 */
export type WorkloadPhase = 'stopped' | 'filling' | 'rewriting' | 'idle';

export interface WorkloadStats {
  phase: WorkloadPhase;
  workingSetPages: number;
  /** Pages of the working set filled so far (fill progress: filledPages / workingSetPages). */
  filledPages: number;
  /** Configured rewrite rate, bytes/s. */
  dirtyRate: number;
  throttle: number;
  /** dirtyRate * (1 - throttle): what the rewrites aim at. */
  targetRate: number;
  /** Bytes/s written over the last second (up to WINDOW_MS; less just after the OS started): fill and rewrites. */
  achievedRate: number;
  /** The same for rewrites alone: compare with targetRate. */
  rewriteRate: number;
  /** Pages written since creation: all, and by the fill. */
  pagesWritten: number;
  fillPagesWritten: number;
}

/** Stats window. */
export const WINDOW_MS = 1000;
/** Longest elapsed time one step credits (a stalled event loop does not cause a burst). */
const MAX_STEP_MS = 250;
/** Most credit carried between steps, in seconds of the target rate. */
const MAX_CARRY_S = 0.5;
/** Pages written between two clock reads. */
const CLOCK_EVERY = 8;

// ---------------------------------------------------------------------------------------------
// Content

/** 16 KiB of ASCII (a page of it deflates about 3.5:1), from a fixed word list (no randomness: same bytes every run). */
const TEXT: Buffer = (() => {
  const words = (
    'the kernel zfs pool ldom vnet vdisk vsw vds primary guest domain memory page cpu strand core ' +
    'interrupt cache thread process signal mutex condvar dispatch queue sparc sun4v hypervisor ' +
    'channel console openboot boot solaris release patch package service manifest fault error ' +
    'warning notice debug trace stack frame register trap syscall driver device node property'
  ).split(' ');
  const out: string[] = [];
  let x = 0x2545f491;
  let len = 0;
  let line = 0;
  while (len < 16384) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = words[(x >>> 0) % words.length]!;
    const sep = line + w.length > 72 ? '\n' : ' ';
    line = sep === '\n' ? 0 : line + w.length + 1;
    out.push(w, sep);
    len += w.length + 1;
  }
  return Buffer.from(out.join('').slice(0, 16384), 'latin1');
})();

/**
 * A page of content is built here, then copied into guest memory in one call: element
 * stores into guest memory (a resizable ArrayBuffer, see memory.ts), a small
 * Buffer.write there or a view per page take V8's slower path (2x to 5x).
 */
const SCRATCH_WORDS = new Int32Array(PAGE_SIZE / 4);
const SCRATCH = Buffer.from(SCRATCH_WORDS.buffer);

/** mulberry32: a fast 32-bit PRNG for the page choice (deterministic for a seed). */
function mulberry32(state: number): () => number {
  let a = state | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// ---------------------------------------------------------------------------------------------

export class Workload {
  private config: WorkloadConfig;
  private throttleFraction = 0;
  private wsPages: number;
  private filled = 0;
  /** The OS runs (guest running in solaris): set by the guest. */
  private running = false;
  private last = 0;
  private credit = 0;
  private activeSince = 0;
  private readonly nextRandom: () => number;
  /** xorshift32 state for `random` content. */
  private noise: number;
  private generation = 0;
  private pagesWritten = 0;
  private fillPagesWritten = 0;
  /** Per step: time, fill pages, rewrite pages (ring of the last WINDOW_MS). */
  private samples: { t: number; fill: number; rewrite: number }[] = [];
  private fillWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(
    private readonly memory: GuestMemory,
    config: WorkloadConfig,
    seed: number,
  ) {
    this.config = { ...config };
    this.wsPages = this.pagesOf(config.workingSet);
    this.nextRandom = mulberry32(seed);
    this.noise = (seed ^ 0x9e3779b9) | 1;
  }

  private pagesOf(bytes: number): number {
    return Math.min(this.memory.pages, Math.ceil(bytes / PAGE_SIZE));
  }

  get settings(): WorkloadConfig {
    return { ...this.config };
  }

  get throttle(): number {
    return this.throttleFraction;
  }

  get filledPages(): number {
    return this.filled;
  }

  get workingSetPages(): number {
    return this.wsPages;
  }

  /** Bytes/s the rewrites aim at now. */
  get targetRate(): number {
    return this.config.dirtyRate * (1 - this.throttleFraction);
  }

  /** New settings. A smaller working set forgets the fill beyond it, so growing again refills. */
  configure(config: WorkloadConfig): void {
    this.config = { ...config };
    this.wsPages = this.pagesOf(config.workingSet);
    if (this.filled > this.wsPages) this.filled = this.wsPages;
    this.credit = Math.min(this.credit, this.maxCredit());
    this.settleFill();
  }

  setThrottle(fraction: number): void {
    this.throttleFraction = fraction;
    this.credit = Math.min(this.credit, this.maxCredit());
  }

  /** The OS boots: the working set will be filled again from page 0. */
  boot(): void {
    this.filled = 0;
    this.credit = 0;
  }

  /** Continue a fill made elsewhere (incoming migration). */
  restoreFill(filledPages: number): void {
    this.filled = Math.max(0, Math.min(this.wsPages, Math.floor(filledPages)));
    this.settleFill();
  }

  /** Start or stop (the guest's state decides). Starting begins pacing from `now`: no catch-up. */
  setRunning(running: boolean, now = performance.now()): void {
    if (running && !this.running) {
      this.last = now;
      this.credit = 0;
      this.activeSince = now;
    }
    this.running = running;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Something to do now: the pacer keeps stepping this workload. */
  hasWork(): boolean {
    return this.running && (this.filled < this.wsPages || (this.targetRate > 0 && this.wsPages > 0));
  }

  get phase(): WorkloadPhase {
    if (!this.running) return 'stopped';
    if (this.filled < this.wsPages) return 'filling';
    return this.targetRate > 0 && this.wsPages > 0 ? 'rewriting' : 'idle';
  }

  whenFilled(): Promise<void> {
    if (this.filled >= this.wsPages) return Promise.resolve();
    return new Promise((resolve, reject) => this.fillWaiters.push({ resolve, reject }));
  }

  /** Reject whoever waits for the fill (the guest is destroyed). */
  abandon(reason: unknown): void {
    this.running = false;
    const waiters = this.fillWaiters;
    this.fillWaiters = [];
    for (const w of waiters) w.reject(reason);
  }

  private settleFill(): void {
    if (this.filled < this.wsPages || this.fillWaiters.length === 0) return;
    const waiters = this.fillWaiters;
    this.fillWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private maxCredit(): number {
    return Math.max(1, (this.targetRate * MAX_CARRY_S) / PAGE_SIZE);
  }

  /**
   * Work from `now` until `deadline` at the latest (performance.now() milliseconds): fill
   * first, then rewrite what the elapsed time earned.
   */
  step(now: number, deadline: number): void {
    if (!this.running) return;
    const elapsed = Math.min(MAX_STEP_MS, Math.max(0, now - this.last));
    this.last = now;
    let fillPages = 0;
    let rewritePages = 0;
    if (this.filled < this.wsPages) {
      // A throttled vCPU fills more slowly too.
      const fillDeadline = now + (deadline - now) * (1 - this.throttleFraction);
      fillPages = this.fillUntil(fillDeadline);
      if (this.filled >= this.wsPages) {
        this.settleFill();
        this.last = performance.now(); // rewrites are earned from the end of the fill
      }
    } else {
      const rate = this.targetRate;
      if (rate > 0 && this.wsPages > 0) {
        this.credit = Math.min(this.credit + (rate * elapsed) / 1000 / PAGE_SIZE, this.maxCredit());
        rewritePages = this.rewriteUntil(deadline);
      }
    }
    if (fillPages + rewritePages > 0) this.samples.push({ t: now, fill: fillPages, rewrite: rewritePages });
    this.prune(now);
  }

  private fillUntil(deadline: number): number {
    let n = 0;
    while (this.filled < this.wsPages) {
      this.writePage(this.filled++);
      n++;
      if (n % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
    }
    this.fillPagesWritten += n;
    return n;
  }

  private rewriteUntil(deadline: number): number {
    let n = 0;
    const ws = this.wsPages;
    while (this.credit >= 1) {
      this.writePage(this.nextRandom() % ws);
      this.credit -= 1;
      n++;
      if (n % CLOCK_EVERY === 0 && performance.now() >= deadline) break;
    }
    return n;
  }

  private writePage(index: number): void {
    this.pagesWritten++;
    const gen = ++this.generation;
    switch (this.config.fill) {
      case 'zero':
        this.memory.zero(index);
        return;
      case 'text': {
        const off = ((index * 131 + gen * 17) % 1024) * 8;
        TEXT.copy(SCRATCH, 0, off, off + PAGE_SIZE);
        SCRATCH.write(`page ${String(index).padStart(10, '0')} gen ${String(gen).padStart(10, '0')}\n`, 0, 'latin1');
        this.memory.write(index, SCRATCH);
        return;
      }
      case 'random': {
        const words = SCRATCH_WORDS;
        let x = this.noise;
        words[0] = index;
        words[1] = gen;
        for (let i = 2; i < words.length; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          words[i] = x;
        }
        this.noise = x;
        this.memory.write(index, SCRATCH);
        return;
      }
    }
  }

  private prune(now: number): void {
    const s = this.samples;
    let drop = 0;
    while (drop < s.length && s[drop]!.t <= now - WINDOW_MS) drop++;
    if (drop > 0) s.splice(0, drop);
  }

  stats(now = performance.now()): WorkloadStats {
    this.prune(now);
    let fill = 0;
    let rewrite = 0;
    for (const s of this.samples) {
      fill += s.fill;
      rewrite += s.rewrite;
    }
    // Over the window, or since the OS started if that is more recent (the first second is not diluted).
    const span = this.running ? Math.min(WINDOW_MS, Math.max(1, now - this.activeSince)) : WINDOW_MS;
    const perSecond = (pages: number) => (pages * PAGE_SIZE * 1000) / span;
    return {
      phase: this.phase,
      workingSetPages: this.wsPages,
      filledPages: this.filled,
      dirtyRate: this.config.dirtyRate,
      throttle: this.throttleFraction,
      targetRate: this.targetRate,
      achievedRate: perSecond(fill + rewrite),
      rewriteRate: perSecond(rewrite),
      pagesWritten: this.pagesWritten,
      fillPagesWritten: this.fillPagesWritten,
    };
  }
}

// ---------------------------------------------------------------------------------------------

export interface PacerOptions {
  /** Milliseconds between ticks (default 10). */
  tickMs?: number;
  /** CPU milliseconds all workloads together may use per tick (default 4). */
  budgetMs?: number;
}

/**
 * Drives the active workloads of one hypervisor from a single timer. Each tick shares
 * the budget among them, starting with a different one each time (round robin), so one
 * guest filling 16G cannot starve the others or the agent. The timer runs only while a
 * workload has work, and keeps the process alive meanwhile.
 */
export class WorkloadPacer {
  readonly tickMs: number;
  readonly budgetMs: number;
  private readonly active = new Set<Workload>();
  private timer: NodeJS.Timeout | null = null;
  private turn = 0;
  /**
   * Wall time of each tick's work, in nanoseconds: about the budget at most, plus one
   * clock-check granularity, unless the OS preempts the process or the collector runs.
   */
  readonly tickTimes: RecordableHistogram = createHistogram();
  /**
   * CPU time of each tick, in nanoseconds (process.cpuUsage: user + system, all threads of
   * the process): what the workloads really cost, even when the OS preempts the process.
   */
  readonly tickCpu: RecordableHistogram = createHistogram();

  constructor(options: PacerOptions = {}) {
    this.tickMs = options.tickMs ?? 10;
    this.budgetMs = options.budgetMs ?? 4;
  }

  /** Step this workload from now on while it has work (call again after changing it). */
  update(workload: Workload): void {
    if (workload.hasWork()) this.active.add(workload);
    else this.active.delete(workload);
    this.schedule();
  }

  remove(workload: Workload): void {
    this.active.delete(workload);
    this.schedule();
  }

  get activeCount(): number {
    return this.active.size;
  }

  private schedule(): void {
    if (this.active.size > 0 && this.timer === null) {
      this.timer = setTimeout(() => this.tick(), this.tickMs);
    } else if (this.active.size === 0 && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    this.timer = null;
    const list = [...this.active];
    const cpu = process.cpuUsage();
    const start = performance.now();
    const end = start + this.budgetMs;
    const first = this.turn++ % Math.max(1, list.length);
    for (let i = 0; i < list.length; i++) {
      const w = list[(first + i) % list.length]!;
      const now = performance.now();
      if (now >= end) break; // the others are credited for the elapsed time at their next turn
      try {
        w.step(now, now + (end - now) / (list.length - i));
      } catch (err) {
        // A write the memory refused (the budget; reservations make it unexpected): this
        // workload stops, the timer and the other guests go on. Nothing here may throw.
        w.abandon(err);
      }
      if (!w.hasWork()) this.active.delete(w);
    }
    this.tickTimes.record(Math.max(1, Math.round((performance.now() - start) * 1e6)));
    const used = process.cpuUsage(cpu);
    this.tickCpu.record(Math.max(1, (used.user + used.system) * 1000));
    this.schedule();
  }
}

/** A seed from a guest name (FNV-1a), so a guest's workload is the same run after run. */
export function seedFromName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
