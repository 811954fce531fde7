/**
 * The hypervisor interface: what the manager and migration use of a guest. The
 * simulator (simulator.ts, guest.ts) implements it; a backend for real guests could
 * replace it without touching migration code. Nothing here knows about domains'
 * configuration: callers hand in a name, a size and the boot and workload settings
 * (variables.ts reads the latter from domain variables).
 *
 * Guest lifecycle (`Guest.state`), and where the guest's OS is while it runs
 * (`Guest.runState`, the `sim-state` variable):
 *
 * ```
 *                start(boot)                    suspend()
 *   created ───────────────────► running ───────────────────► suspended
 *      │                         (solaris │    ◄───────────────   │
 *      │  resume(runtime)         openboot │       resume()        │
 *      └───────────────────────►  kmdb)   │                       │
 *      │   (incoming migration)          │ destroy()             │ destroy()
 *      └──────────── destroy() ──────────┴────────► destroyed ◄───┘
 *                                     (memory dropped, given back to the system)
 *
 *   runState while running: setRunState()
 *     openboot ──► solaris | kmdb   the OS boots: the working set is filled again
 *     solaris  ◄─► kmdb             the kernel stops in / continues from the debugger
 *     solaris | kmdb ──► openboot   the OS halts to the `ok` prompt
 * ```
 *
 * The workload (fill, then rewrites at the dirty rate) runs only while the guest is
 * `running` in `solaris`. Memory can be read and written and the dirty log used in every
 * state but `destroyed`; `destroyed` is entered as soon as destroy() is called, and
 * destroy()'s promise settles when the scrub has finished.
 */
import type { ScrubReport } from './memory.ts';
import type { FillKind, WorkloadConfig, WorkloadStats } from './workload.ts';

export { PAGE_SIZE } from './memory.ts';
export type { ScrubReport } from './memory.ts';
export type { FillKind, WorkloadConfig, WorkloadPhase, WorkloadStats } from './workload.ts';

export type GuestState = 'created' | 'running' | 'suspended' | 'destroyed';

/** Where a running guest is: the OS, the OpenBoot `ok` prompt, or the kernel debugger. */
export type RunState = 'solaris' | 'openboot' | 'kmdb';

export const RUN_STATES: readonly RunState[] = ['solaris', 'openboot', 'kmdb'];
export const FILL_KINDS: readonly FillKind[] = ['zero', 'text', 'random'];

export interface GuestSpec {
  /** Unique among the hypervisor's guests (the domain name). */
  name: string;
  /** Bound memory in bytes: a positive multiple of PAGE_SIZE. */
  memoryBytes: number;
  /** The workload, as far as known at creation (the rest from DEFAULT_WORKLOAD). */
  workload?: Partial<WorkloadConfig>;
  /** Seed of the workload's page choice and content (default: from the name). */
  seed?: number;
}

/** How start() boots the guest (from `auto-boot?`, `sim-state`, `sim-os`). */
export interface BootOptions {
  /** false: the guest stops at the OpenBoot `ok` prompt whatever `state` says. */
  autoBoot: boolean;
  /** Where an auto-booted guest goes (default `solaris`). */
  state?: RunState;
  /** OS release, e.g. `s10u9`, `s11`. */
  os: string;
}

/**
 * What a guest needs to continue elsewhere (JSON-serializable): migration reads it
 * from the suspended source and hands it to the target's resume().
 */
export interface GuestRuntime {
  runState: RunState;
  os: string;
  workload: WorkloadConfig;
  /** Pages of the working set the OS has filled so far (the target continues the fill). */
  filledPages: number;
  /** When the guest booted (ms since the epoch): its uptime goes on across a migration. */
  startedAt?: number;
}

/** One page as read or written: its index, and its bytes or null for a page of zeros. */
export interface PageData {
  index: number;
  /** PAGE_SIZE bytes, or null: the page is all zeros (never written, or written with zeros). */
  bytes: Uint8Array | null;
}

export interface StateChange {
  guest: string;
  state: GuestState;
  runState: RunState | null;
  previous: { state: GuestState; runState: RunState | null };
}

export interface Guest {
  readonly name: string;
  /** Nominal memory: bytes and pages. */
  readonly memoryBytes: number;
  readonly pages: number;
  readonly state: GuestState;
  /** Where the OS is: set while running or suspended, null before start and after destroy. */
  readonly runState: RunState | null;
  /** OS release, null before start. */
  readonly os: string | null;
  /** When it booted (start) or, for an incoming migration, when it booted elsewhere (ms since the epoch); null before. */
  readonly startedAt: number | null;
  /** Distinct pages written at least once (zeros included). */
  readonly touchedPages: number;
  /** Real storage the guest's memory holds (grows with touched pages, not with the nominal size). */
  readonly residentBytes: number;

  /** created -> running: boot (the OS fills its working set) or stop at `ok`. */
  start(boot: BootOptions): void;
  /** While running: move between the OS, the `ok` prompt and the kernel debugger. */
  setRunState(state: RunState): void;
  /** running -> suspended: the workload stops; no page changes until resume() or a write. */
  suspend(): void;
  /**
   * suspended -> running, as it was. created -> running with `runtime`: the guest
   * continues one suspended elsewhere (incoming migration), without booting.
   */
  resume(runtime?: GuestRuntime): void;
  /** What resume() on another guest needs; not after destroy. */
  runtime(): GuestRuntime;

  /**
   * Pages first .. first+count-1 (count at most MAX_READ_PAGES), in order. Bytes are
   * copies the caller owns (non-zero pages of one call share one allocation).
   */
  readPages(first: number, count: number): PageData[];
  /** The same for a list of page indexes (e.g. from readAndClearDirty()), in the list's order. */
  readPagesAt(indexes: ArrayLike<number>): PageData[];
  /** Copy one page into target at offset: true, or false (target untouched) for a zero page. */
  readPageInto(index: number, target: Uint8Array, offset?: number): boolean;
  /** Write pages (all are checked before any is written). A null `bytes` writes zeros. */
  writePages(pages: readonly PageData[]): void;

  /** Pages written at least once, ascending; with `into` (touchedPages long at least) a view of it. */
  touchedIndexes(into?: Uint32Array): Uint32Array;

  /** Start logging written pages (empty log); no-op when already on. */
  enableDirtyLog(): void;
  /**
   * Pages written since enable or the last read, ascending; the log is then empty. With
   * `into` (at least dirtyPageCount long, e.g. one array of `pages` kept by the caller) the
   * answer is a view of it and nothing is allocated; otherwise a new array.
   */
  readAndClearDirty(into?: Uint32Array): Uint32Array;
  /** Stop logging and drop the log; no-op when already off. */
  disableDirtyLog(): void;
  readonly dirtyLogEnabled: boolean;
  /** Pages in the log now (what readAndClearDirty() would return), without clearing. */
  readonly dirtyPageCount: number;

  /** Hex SHA-256 of the non-zero pages: see GuestMemory.digest for the exact definition. */
  digest(): Promise<string>;

  /**
   * Change the workload; takes effect at once (a larger working set is filled when the OS
   * runs). A working set whose storage would pass the memory budget is refused (GUEST_MEMORY_BUDGET).
   */
  setWorkload(workload: Partial<WorkloadConfig>): void;
  /** Auto-converge: the guest's vCPUs lose this fraction of their time (0 to 1); 0 = unthrottled. */
  setThrottle(fraction: number): void;
  readonly throttle: number;
  workloadStats(): WorkloadStats;
  /** Settles when the working set is filled (rejects if the guest is destroyed first). */
  whenFilled(): Promise<void>;

  /**
   * -> destroyed: stop the workload, drop every page and give the storage back to the
   * system; resolves after the scrub, when the guest's memory is out of the process and
   * its share of the memory budget free again. Calling it again returns the same promise.
   */
  destroy(): Promise<ScrubReport>;

  on(event: 'state', listener: (change: StateChange) => void): this;
  off(event: 'state', listener: (change: StateChange) => void): this;
}

export interface Hypervisor {
  readonly pageSize: number;
  /** Resident memory all guests together may hold (`limit`), and what they claim now (`used`), in bytes. */
  readonly memoryBudget: { readonly limit: number; readonly used: number };
  /**
   * A new guest in state `created`, all memory zero. Its working set is reserved in the
   * memory budget; refused (GUEST_MEMORY_BUDGET) when it would not fit.
   */
  create(spec: GuestSpec): Guest;
  /**
   * Refuse (GUEST_MEMORY_BUDGET) a workload that would take the guests past the memory
   * budget: for the existing guest `name` (its claim is replaced), or for a new guest
   * of `memoryBytes`. Changes nothing; create() and setWorkload() decide the same way.
   */
  admitWorkload(name: string, memoryBytes: number, workload: WorkloadConfig): void;
  guest(name: string): Guest | undefined;
  /** Guests not yet fully destroyed, in creation order. */
  guests(): Guest[];
  /** Destroy every guest (scrubbing their memory). */
  close(): Promise<void>;
}
