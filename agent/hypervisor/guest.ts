/**
 * A simulated guest: GuestMemory + Workload behind the Guest interface, with the state
 * machine drawn in hypervisor.ts. Every refusal is an LdmError with a stable code
 * (GUEST_STATE, GUEST_PAGE_RANGE, GUEST_DIRTY_LOG, GUEST_WORKLOAD) and a text from
 * hypervisorMessages. State changes are emitted as `state` events and published on the
 * diagnostics channel `ldm:hypervisor:state` (free when nobody listens).
 */
import diagnostics from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { ErrorCodes, LdmError } from '../errors.ts';
import { hypervisorMessages as msg } from '../messages.ts';
import type { BootOptions, Guest, GuestRuntime, GuestState, PageData, RunState, StateChange } from './hypervisor.ts';
import { RUN_STATES } from './hypervisor.ts';
import type { BudgetAccount } from './budget.ts';
import { CHUNK_PAGES, GuestMemory, PAGE_SIZE, type ScrubReport } from './memory.ts';
import { Workload, WorkloadPacer, type WorkloadConfig, type WorkloadStats } from './workload.ts';
import { checkWorkload } from './variables.ts';

/** Most pages one readPages()/readPagesAt() call returns (512 MiB). */
export const MAX_READ_PAGES = 65536;

/** Published on every state change: a StateChange. */
export const stateChannel = diagnostics.channel('ldm:hypervisor:state');
/** Published when a destroyed guest's scrub has finished: { guest, report: ScrubReport }. */
export const scrubChannel = diagnostics.channel('ldm:hypervisor:scrub');

/**
 * Storage a workload's working set takes once filled: whole chunks from page 0 (the
 * last one maybe short, at the end of guest memory). A `zero` fill allocates nothing.
 */
export function workingSetStorage(pages: number, workload: WorkloadConfig): number {
  if (workload.fill === 'zero') return 0;
  const wsPages = Math.min(pages, Math.ceil(workload.workingSet / PAGE_SIZE));
  return Math.min(Math.ceil(wsPages / CHUNK_PAGES) * CHUNK_PAGES, pages) * PAGE_SIZE;
}

export class SimGuest implements Guest {
  readonly name: string;
  readonly memoryBytes: number;
  readonly pages: number;
  /** The storage (tests and benchmarks look inside; the rest of the agent uses the Guest interface). */
  readonly memory: GuestMemory;
  private readonly workload: Workload;
  private readonly events = new EventEmitter();
  private current: GuestState = 'created';
  private where: RunState | null = null;
  private release: string | null = null;
  startedAt: number | null = null;
  private destroying: Promise<ScrubReport> | null = null;

  constructor(
    spec: { name: string; memoryBytes: number; workload: WorkloadConfig; seed: number },
    private readonly pacer: WorkloadPacer,
    private readonly onDestroyed: (guest: SimGuest) => void = () => {},
    /** The guest's share of the hypervisor's memory budget, its working set already reserved; none: unlimited. */
    readonly account?: BudgetAccount,
  ) {
    this.name = spec.name;
    this.memoryBytes = spec.memoryBytes;
    this.pages = spec.memoryBytes / PAGE_SIZE;
    this.memory = new GuestMemory(this.pages, account);
    this.workload = new Workload(this.memory, spec.workload, spec.seed);
  }

  get state(): GuestState {
    return this.current;
  }

  get runState(): RunState | null {
    return this.where;
  }

  get os(): string | null {
    return this.release;
  }

  get touchedPages(): number {
    return this.memory.touchedPages;
  }

  get residentBytes(): number {
    return this.memory.residentBytes;
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  start(boot: BootOptions): void {
    this.expect('start', 'created');
    const target: RunState = boot.autoBoot ? (boot.state ?? 'solaris') : 'openboot';
    this.checkRunState(target);
    this.release = boot.os;
    if (target !== 'openboot') this.workload.boot();
    this.startedAt = Date.now();
    this.transition('running', target);
  }

  setRunState(state: RunState): void {
    this.checkRunState(state);
    if (this.current !== 'running') {
      throw new LdmError(ErrorCodes.GUEST_STATE, msg.notRunning(this.name, this.current));
    }
    if (state === this.where) return;
    if (this.where === 'openboot') this.workload.boot(); // `boot` at the ok prompt: the OS loads again
    this.transition('running', state);
  }

  suspend(): void {
    this.expect('suspend', 'running');
    this.transition('suspended', this.where);
  }

  resume(runtime?: GuestRuntime): void {
    if (this.current === 'created' && runtime !== undefined) {
      this.checkRunState(runtime.runState);
      this.setWorkload(runtime.workload);
      this.workload.restoreFill(runtime.filledPages);
      this.release = runtime.os;
      const started = runtime.startedAt;
      this.startedAt = typeof started === 'number' && Number.isFinite(started) && started <= Date.now() ? started : Date.now();
      this.transition('running', runtime.runState);
      return;
    }
    if (this.current === 'created') throw new LdmError(ErrorCodes.GUEST_STATE, msg.incomingNeedsRuntime(this.name));
    this.expect('resume', 'suspended');
    if (runtime !== undefined) throw new LdmError(ErrorCodes.GUEST_STATE, msg.wrongState(this.name, 'resume with a runtime state', this.current));
    this.transition('running', this.where);
  }

  runtime(): GuestRuntime {
    this.alive('read the runtime state of');
    return {
      runState: this.where ?? 'openboot',
      os: this.release ?? '',
      workload: this.workload.settings,
      filledPages: this.workload.filledPages,
      ...(this.startedAt === null ? {} : { startedAt: this.startedAt }),
    };
  }

  destroy(): Promise<ScrubReport> {
    if (this.destroying !== null) return this.destroying;
    this.transition('destroyed', null);
    this.workload.abandon(new LdmError(ErrorCodes.GUEST_STATE, msg.wrongState(this.name, 'fill the working set of', 'destroyed')));
    this.destroying = this.memory.scrub().then((report) => {
      this.onDestroyed(this);
      if (scrubChannel.hasSubscribers) scrubChannel.publish({ guest: this.name, report });
      return report;
    });
    return this.destroying;
  }

  private checkRunState(state: RunState): void {
    if (!RUN_STATES.includes(state)) throw new LdmError(ErrorCodes.GUEST_STATE, msg.badVariable('sim-state', String(state), RUN_STATES.join(', ')));
  }

  private expect(operation: string, ...states: GuestState[]): void {
    if (!states.includes(this.current)) throw new LdmError(ErrorCodes.GUEST_STATE, msg.wrongState(this.name, operation, this.current));
  }

  private alive(operation: string): void {
    if (this.current === 'destroyed') throw new LdmError(ErrorCodes.GUEST_STATE, msg.wrongState(this.name, operation, this.current));
  }

  private transition(state: GuestState, runState: RunState | null): void {
    const previous = { state: this.current, runState: this.where };
    this.current = state;
    this.where = runState;
    this.workload.setRunning(state === 'running' && runState === 'solaris');
    if (state === 'destroyed') this.pacer.remove(this.workload);
    else this.pacer.update(this.workload);
    const change: StateChange = { guest: this.name, state, runState, previous };
    if (stateChannel.hasSubscribers) stateChannel.publish(change);
    this.events.emit('state', change);
  }

  on(event: 'state', listener: (change: StateChange) => void): this {
    this.events.on(event, listener);
    return this;
  }

  off(event: 'state', listener: (change: StateChange) => void): this {
    this.events.off(event, listener);
    return this;
  }

  // -------------------------------------------------------------------------------------------
  // Pages

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.pages) {
      throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.pageIndex(index, this.pages));
    }
  }

  readPages(first: number, count: number): PageData[] {
    this.alive('read pages of');
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > this.pages) {
      throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.pageRange(first, count, this.pages));
    }
    if (count > MAX_READ_PAGES) throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.readTooLarge(count, MAX_READ_PAGES));
    return this.copyOut(count, (i) => first + i);
  }

  readPagesAt(indexes: ArrayLike<number>): PageData[] {
    this.alive('read pages of');
    if (indexes.length > MAX_READ_PAGES) throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.readTooLarge(indexes.length, MAX_READ_PAGES));
    for (let i = 0; i < indexes.length; i++) this.checkIndex(indexes[i]!);
    return this.copyOut(indexes.length, (i) => indexes[i]!);
  }

  /** Copies of the pages, the non-zero ones in one allocation (two passes: find them, then copy). */
  private copyOut(count: number, indexAt: (i: number) => number): PageData[] {
    const out: PageData[] = new Array(count);
    const views: (Buffer | null)[] = new Array(count);
    let nonZero = 0;
    for (let i = 0; i < count; i++) {
      const v = this.memory.nonZero(indexAt(i));
      views[i] = v;
      if (v !== null) nonZero++;
    }
    // new ArrayBuffer measured faster here than Buffer.allocUnsafeSlow for 512K (bench/hypervisor.ts).
    const block = new ArrayBuffer(nonZero * PAGE_SIZE);
    let off = 0;
    for (let i = 0; i < count; i++) {
      const v = views[i]!;
      if (v === null) out[i] = { index: indexAt(i), bytes: null };
      else {
        const copy = Buffer.from(block, off, PAGE_SIZE);
        v.copy(copy);
        out[i] = { index: indexAt(i), bytes: copy };
        off += PAGE_SIZE;
      }
    }
    return out;
  }

  readPageInto(index: number, target: Uint8Array, offset = 0): boolean {
    this.alive('read pages of');
    this.checkIndex(index);
    if (!Number.isInteger(offset) || offset < 0 || offset + PAGE_SIZE > target.length) {
      throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.pageLength(index, target.length - offset, PAGE_SIZE));
    }
    return this.memory.readInto(index, target, offset);
  }

  writePages(pages: readonly PageData[]): void {
    this.alive('write pages of');
    for (const p of pages) {
      this.checkIndex(p.index);
      if (p.bytes !== null && p.bytes.length !== PAGE_SIZE) {
        throw new LdmError(ErrorCodes.GUEST_PAGE_RANGE, msg.pageLength(p.index, p.bytes.length, PAGE_SIZE));
      }
    }
    // The storage the batch needs must fit the budget before any page is written.
    if (this.account !== undefined) this.account.checkAllocate(this.memory.storageFor(pages));
    for (const p of pages) this.memory.write(p.index, p.bytes);
  }

  // -------------------------------------------------------------------------------------------
  // Dirty log and digest

  enableDirtyLog(): void {
    this.alive('enable the dirty page log of');
    this.memory.enableDirtyLog();
  }

  touchedIndexes(into?: Uint32Array): Uint32Array {
    this.alive('list the touched pages of');
    return this.memory.touchedIndexes(into);
  }

  readAndClearDirty(into?: Uint32Array): Uint32Array {
    this.alive('read the dirty page log of');
    if (!this.memory.dirtyLogEnabled) throw new LdmError(ErrorCodes.GUEST_DIRTY_LOG, msg.dirtyLogOff(this.name));
    return this.memory.readAndClearDirty(into);
  }

  disableDirtyLog(): void {
    this.alive('disable the dirty page log of');
    this.memory.disableDirtyLog();
  }

  get dirtyLogEnabled(): boolean {
    return this.memory.dirtyLogEnabled;
  }

  get dirtyPageCount(): number {
    return this.memory.dirtyPageCount;
  }

  digest(): Promise<string> {
    try {
      this.alive('digest the memory of');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.memory.digest();
  }

  // -------------------------------------------------------------------------------------------
  // Workload

  setWorkload(workload: Partial<WorkloadConfig>): void {
    this.alive('change the workload of');
    const next = { ...this.workload.settings, ...workload };
    checkWorkload(next);
    // A larger working set is reserved before the OS starts writing it, or refused.
    this.account?.reserve(workingSetStorage(this.pages, next));
    this.workload.configure(next);
    this.pacer.update(this.workload);
  }

  setThrottle(fraction: number): void {
    this.alive('throttle');
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
      throw new LdmError(ErrorCodes.GUEST_WORKLOAD, msg.badThrottle(fraction));
    }
    this.workload.setThrottle(fraction);
    this.pacer.update(this.workload);
  }

  get throttle(): number {
    return this.workload.throttle;
  }

  workloadStats(): WorkloadStats {
    return this.workload.stats();
  }

  whenFilled(): Promise<void> {
    if (this.current === 'destroyed') {
      return Promise.reject(new LdmError(ErrorCodes.GUEST_STATE, msg.wrongState(this.name, 'fill the working set of', this.current)));
    }
    return this.workload.whenFilled();
  }
}
