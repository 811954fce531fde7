/**
 * The Logical Domains Manager's model: domains, their resources and the
 * services they provide, on one machine. Every change is made on a copy of
 * the state, checked, saved durably, and only then swapped in and announced:
 * a refused or failed change leaves nothing behind, and an acknowledged one
 * survives a crash.
 *
 * Changes run one at a time (a single queue): the simplest lock that keeps
 * allocation decisions and the saved file consistent.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, LdmError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { modelMessages, refusalMessages as m } from '../messages.ts';
import {
  AllocationError,
  allocateConsole,
  allocateDomain,
  allocateMau,
  allocateMemory,
  allocateStrands,
  coreOf,
  freeMemory,
  freeStrands,
  MAX_MEMORY_BLOCKS,
  RA_BASE,
  roundMemory,
  type AllocationFailure,
} from './allocate.ts';
import { AUTO_HOSTID_COUNT, AUTO_MAC_COUNT, MAX_AMOUNT, MAX_DEVICES_PER_DOMAIN, MAX_VARIABLE_NAME_BYTES, MAX_VARIABLE_VALUE_BYTES, MAX_VARIABLES_PER_DOMAIN } from './limits.ts';
import type { MachineSpec } from './machine.ts';
import { formatSize } from './sizes.ts';
import { applyIoProps, applyRcAddPolicy, assignable, checkRemovable, createVfs, destroyVfs, findIo, settableKeys, vfMacs, type MacSource } from './iov.ts';
import { applyProps, canonicalMac, checkMaxCores, defaultProps, hostidValue, upgradeDomain, type DomainProps } from './properties.ts';
import { migrationFlag, Migrations, refuseIfMigrating, refuseWhileMigrationRuns, type MigrationProgressEvent } from './migrations.ts';
import { ModelError, refuse } from './refusal.ts';
import type { StateStore } from './store.ts';
import type { CpuArch, DomainConfig, FailurePolicy, LdmState, SpConfig, VccConfig, VdsConfig, VswConfig } from './types.ts';

export const PRIMARY = 'primary';
export const FACTORY_DEFAULT = 'factory-default';

/** A refusal: the change is not made; the text is what the client reads. */
export { ModelError };

/** What a change records besides the new state: events to announce and work to do once it is saved. */
interface Transaction {
  events: ModelEvent[];
  /** Run after the new state is saved and swapped in, still inside the queue (guests start and stop here). */
  after: (() => void | Promise<void>)[];
}

/** What the model announces after a change: the manager turns these into LDM events. */
export type ModelEvent =
  | { class: 'domain'; action: string; domain: string }
  /** `type` and `props` describe the resource as an Item would (protocol.md section 5); `units` its new amount. */
  | { class: 'resource'; action: string; domain: string; type: string; props: Record<string, string>; units?: string }
  | { class: 'hardware'; action: string; spconfig: string }
  /** Migration progress (agent/model/migrations.ts). */
  | MigrationProgressEvent;

/** The running guests: the hypervisor side of start-domain and stop-domain. */
export interface GuestHost {
  /** A bound domain starts: create its guest and boot it. */
  start(domain: DomainConfig): void | Promise<void>;
  /** An active domain stops: its guest is destroyed (memory scrubbed). */
  stop(name: string): void | Promise<void>;
  /** The guest's own state (`solaris`, `openboot`, ...), when it runs. */
  status?(name: string): string | undefined;
  /** A running domain's variables changed (`sim-state`, the workload knobs). */
  reconfigure?(domain: DomainConfig): void | Promise<void>;
  /** Refuse (throw) variables the guest could not run with; called before such a change is saved. */
  check?(domain: DomainConfig): void;
  /** A running guest's workload: its phase (filling, rewriting, idle, stopped) and the bytes of its working set filled. */
  workload?(name: string): { phase: string; filledBytes: number } | undefined;
  /** Seconds since the guest booted (across migrations), when it runs. */
  uptime?(name: string): number | undefined;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.+-]{0,63}$/;
/** Oracle's range for automatically assigned MAC addresses starts at 00:14:4f:f8:00:00 (AUTO_MAC_COUNT of them). */
const MAC_FIRST = 0x00144ff80000;
/** Automatic domain host ids start at 0x84f80000 (AUTO_HOSTID_COUNT of them). */
const HOSTID_FIRST = 0x84f80000;
/**
 * Automatic host id number n comes from the counter c as (c + HOSTID_SHIFT) mod
 * AUTO_HOSTID_COUNT: states saved before the numbering was spread (counter from 1,
 * host ids from 0x84f81001) go on listing the same sequence.
 */
const HOSTID_SHIFT = 0x1000;

/** A domain's own properties (ldom_info): agent/model/properties.ts. */
export type { DomainProps };

/** Constraints given with add-domain (the shape list-constraints prints). */
export interface DomainConstraints {
  vcpus?: number;
  wholeCores?: number;
  memory?: number;
  mau?: number;
  io?: string[];
  vdisks?: { name: string; volume: string; service: string; timeout?: number }[];
  vnets?: { name: string; service: string; mac?: string; pvid?: number; vid?: string; mode?: string; linkprop?: string }[];
  variables?: [string, string][];
  console?: { port?: number; service?: string; group?: string; log?: boolean };
}

export class Ldm {
  private state: LdmState;
  private queue: Promise<unknown> = Promise.resolve();
  /** Migration records: their changes, on this model's queue (agent/model/migrations.ts). */
  readonly migrations: Migrations;

  private constructor(
    readonly machine: MachineSpec,
    state: LdmState,
    private readonly store: StateStore,
    private readonly emit: (ev: ModelEvent) => void,
    private readonly guests: GuestHost,
  ) {
    this.state = state;
    this.migrations = new Migrations({
      machine,
      current: () => this.state,
      change: (fn) => this.change((s, events, tx) => fn(s, (ev) => events.push(ev), (work) => tx.after.push(work))),
      emit,
      guestExists: (name) => guests.status?.(name) !== undefined,
      startGuest: (d) => guests.start(d),
    });
  }

  /**
   * Open the model of `store`: the saved state, or on the first start the
   * primary domain as the machine describes it. Domains that were active when
   * the agent stopped are restarted (announced as `domain-reset`).
   */
  static async open(
    machine: MachineSpec,
    store: StateStore,
    emit: (ev: ModelEvent) => void,
    guests: GuestHost,
    log: Logger = createLogger().child('model'),
  ): Promise<Ldm> {
    const saved = await store.load();
    const state = saved ? upgradeState(saved) : initialState(machine);
    if (!saved) await store.save(state);
    const ldm = new Ldm(machine, state, store, emit, guests);
    if (saved) await ldm.applyDelayedReconf(log);
    if (saved) await ldm.migrations.settleAtStart(log);
    // The current state (the steps above may have replaced it); a source in the migration error state waits to be settled.
    for (const d of ldm.state.domains) {
      if (d.state === 'active' && d.name !== PRIMARY && !d.migration) {
        await guests.start(d);
        emit({ class: 'domain', action: 'domain-reset', domain: d.name });
      }
    }
    return ldm;
  }

  /** A read-only view of the current state (listings). */
  get snapshot(): Readonly<LdmState> {
    return this.state;
  }

  domain(name: string): DomainConfig | undefined {
    return this.state.domains.find((d) => d.name === name);
  }

  guestStatus(name: string): string | undefined {
    return this.guests.status?.(name);
  }

  guestWorkload(name: string): { phase: string; filledBytes: number } | undefined {
    return this.guests.workload?.(name);
  }

  guestUptime(name: string): number | undefined {
    return this.guests.uptime?.(name);
  }

  /**
   * Oracle's six flag columns: starting/stopping, normal (`n`), delayed
   * reconfiguration (`d`), control domain (`c`), virtual I/O service (`v`),
   * migration (`s` source, `t` target, `e` error: agent/model/migrations.ts).
   */
  flags(d: DomainConfig): string {
    const provides = [...this.state.vds, ...this.state.vsw, ...this.state.vcc].some((s) => s.domain === d.name);
    return [
      '-',
      d.state === 'active' ? 'n' : '-',
      d.delayedReconf ? 'd' : '-',
      d.name === PRIMARY ? 'c' : '-',
      provides ? 'v' : '-',
      migrationFlag(d),
    ].join('');
  }

  // ── the change machinery ─────────────────────────────────────────────────

  /**
   * Run `change` on a copy of the state; save it; swap it in; announce the
   * events. Any refusal or failure leaves the current state untouched.
   */
  private change<T>(change: (s: LdmState, events: ModelEvent[], tx: Transaction) => T): Promise<T> {
    const run = this.queue.then(async () => {
      const draft = structuredClone(this.state);
      const tx: Transaction = { events: [], after: [] };
      const result = change(draft, tx.events, tx);
      const text = this.encode(draft);
      try {
        await this.store.save(draft, text);
      } catch (err) {
        await this.rollBack();
        throw err;
      }
      this.state = draft;
      for (const fn of tx.after) await fn();
      for (const ev of tx.events) this.emit(ev);
      return result;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** The store's check of a new state, as a refusal: a state the loader would reject is never written. */
  private encode(draft: LdmState): string {
    try {
      return this.store.encode(draft);
    } catch (err) {
      if (err instanceof LdmError && (err.code === ErrorCodes.STATE_INVALID || err.code === ErrorCodes.STATE_TOO_LARGE)) refuse(err.message);
      throw err;
    }
  }

  /**
   * A failed save may have replaced the file already (a failure after the
   * rename): write the acknowledged state back, so that a refused change
   * cannot come back at the next start. If that fails too, the next
   * successful save (every save writes the whole state) sets it right.
   */
  private async rollBack(): Promise<void> {
    await this.store.save(this.state).catch(() => {});
  }

  /** The domain a change is about; one that takes part in a migration may not change (migrations.ts). */
  private static find(s: LdmState, name: string): DomainConfig {
    const d = s.domains.find((x) => x.name === name) ?? refuse(m.noSuchDomain(name));
    refuseIfMigrating(d);
    return d;
  }

  /** While the primary waits for its reboot, only the primary may change (Oracle's rule). */
  private static checkReconf(s: LdmState, target: string): void {
    const primary = s.domains.find((d) => d.name === PRIMARY);
    if (primary?.delayedReconf && target !== PRIMARY) refuse(m.reconfPending());
  }

  private allocationMessage(f: AllocationFailure, domain: string): string {
    switch (f.kind) {
      case 'cpu':
        return m.notEnoughCpus(f.wanted, f.free);
      case 'cores':
        return m.notEnoughCores(f.wanted, f.free);
      case 'memory':
        return m.notEnoughMemory(formatSize(f.wanted), formatSize(f.free));
      case 'fragmented':
        return m.fragmented(formatSize(f.wanted), MAX_MEMORY_BLOCKS, formatSize(f.largest));
      case 'mau':
        return m.notEnoughMau(f.wanted, f.free, domain);
      case 'console':
        return m.noConsolePort();
    }
  }

  /** The guest host's objections, as refusals (its typed errors name the variable). */
  private checkGuest(d: DomainConfig): void {
    try {
      this.guests.check?.(d);
    } catch (err) {
      if (err instanceof LdmError) refuse(err.message);
      throw err;
    }
  }

  private allocating<T>(domain: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof AllocationError) refuse(this.allocationMessage(err.failure, domain));
      throw err;
    }
  }

  // ── domains ─────────────────────────────────────────────────────────────

  /**
   * add-domain, optionally with its constraints at once (list-constraints
   * output fed back as input): all of it or nothing.
   */
  addDomain(name: string, props: DomainProps = {}, constraints: DomainConstraints = {}): Promise<void> {
    return this.addDomains([{ name, props, constraints }]);
  }

  /** Several domains in one change (one object naming several): all of them or none. */
  addDomains(list: { name: string; props?: DomainProps; constraints?: DomainConstraints }[]): Promise<void> {
    return this.change((s, events) => {
      // Refused before any work: one request's work is bounded by the machine's limit.
      const total = s.domains.length + list.length;
      if (total > this.machine.maxDomains) refuse(m.tooManyDomains(this.machine.maxDomains, total));
      const taken = { names: new Set(s.domains.map((d) => d.name)), hostids: new Set(s.domains.map((d) => hostidValue(d.hostid))) };
      for (const { name, props = {}, constraints = {} } of list) this.addOne(s, events, taken, name, props, constraints);
    });
  }

  /** One domain of add-domain; `taken`: the draft's domain names and host id values (sets, so a request of many domains stays linear). */
  private addOne(
    s: LdmState,
    events: ModelEvent[],
    taken: { names: Set<string>; hostids: Set<number> },
    name: string,
    props: DomainProps,
    constraints: DomainConstraints,
  ): void {
    {
      if (!NAME_RE.test(name)) refuse(m.invalidName(name));
      if (taken.names.has(name)) refuse(m.domainExists(name));
      Ldm.checkReconf(s, name);
      const d: DomainConfig = {
        name,
        uuid: nextUuid(s, this.machine, name),
        hostid: nextHostid(s, taken.hostids),
        // A MAC address given with the domain is set by applyProps: none of the automatic ones is taken for it.
        mac: props.mac ? '' : nextMac(s),
        state: 'inactive',
        ...defaultProps(false),
        vcpus: 0,
        wholeCores: 0,
        memory: 0,
        mau: 0,
        io: [],
        vdisks: [],
        vnets: [],
        console: {},
        variables: [],
      };
      applyProps(s, d, props, this.machine, true, (mac) => checkMac(s, mac));
      s.domains.push(d);
      taken.names.add(name);
      taken.hostids.add(hostidValue(d.hostid));
      applyConstraints(s, d, constraints, this.machine);
      this.checkGuest(d);
      events.push({ class: 'domain', action: 'add-domain', domain: name });
    }
  }

  setDomain(name: string, props: DomainProps): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      // Only a change counts: list-domain output sent back repeats these for a bound or active domain.
      const changes: [string, boolean][] = [
        ['hostid', props.hostid !== undefined && hostidValue(props.hostid) !== hostidValue(d.hostid)],
        ['mac-addr', props.mac !== undefined && canonicalMac(props.mac) !== d.mac],
        ['cpu-arch', props.cpuArch !== undefined && props.cpuArch !== d.cpuArch],
      ];
      for (const [key, changed] of changes) if (changed && d.state !== 'inactive') refuse(m.onlyWhenInactive(name, key, d.state));
      applyProps(s, d, props, this.machine, false, (mac) => checkMac(s, mac));
      events.push({ class: 'domain', action: 'set-domain', domain: name });
    });
  }

  /** remove-domain NAME, or every domain but the primary with `all` (-a). */
  removeDomain(names: string[], all = false): Promise<string[]> {
    return this.change((s, events) => {
      const targets = all ? s.domains.filter((d) => d.name !== PRIMARY).map((d) => d.name) : names;
      for (const name of targets) {
        if (name === PRIMARY) refuse(m.cannotRemovePrimary());
        const d = Ldm.find(s, name);
        if (d.state !== 'inactive') refuse(m.mustBeInactiveToRemove(name, d.state));
        const served = servicesOf(s, name);
        if (served.length > 0) refuse(m.providesServices(name, served));
      }
      s.domains = s.domains.filter((d) => !targets.includes(d.name));
      for (const name of targets) events.push({ class: 'domain', action: 'remove-domain', domain: name });
      return targets;
    });
  }

  bindDomain(name: string): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      if (d.state !== 'inactive') refuse(m.alreadyBound(name, d.state));
      refuseWhileMigrationRuns(s, name, 'bound');
      if (d.vcpus === 0 && d.wholeCores === 0) refuse(m.noCpus(name));
      if (d.memory === 0) refuse(m.noMemory(name));
      for (const v of d.vdisks) volumeOf(s, v.volume, v.service);
      for (const n of d.vnets) if (!s.vsw.some((w) => w.name === n.service)) refuse(m.noSuchVsw(n.service));
      for (const io of d.io) {
        const owner = s.domains.find((o) => o.name !== name && o.bindings && o.io.includes(io));
        if (owner) refuse(m.ioInUse(io, owner.name));
      }
      d.bindings = this.allocating(name, () => allocateDomain(this.machine, s, d, true));
      d.state = 'bound';
      events.push({ class: 'domain', action: 'bind-domain', domain: name });
    });
  }

  unbindDomain(name: string): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      if (name === PRIMARY) refuse(m.controlDomain('unbound'));
      if (d.state === 'active') refuse(m.stopFirst(name));
      if (d.state === 'inactive') refuse(m.notBound(name));
      delete d.bindings;
      d.state = 'inactive';
      events.push({ class: 'domain', action: 'unbind-domain', domain: name });
    });
  }

  startDomain(name: string): Promise<void> {
    return this.change((s, events, tx) => {
      const d = Ldm.find(s, name);
      if (d.state === 'active') refuse(m.alreadyActive(name));
      if (d.state === 'inactive') refuse(m.bindFirst(name));
      this.checkGuest(d);
      d.state = 'active';
      tx.after.push(() => this.guests.start(d));
      events.push({ class: 'domain', action: 'start-domain', domain: name });
    });
  }

  stopDomain(name: string, _force = false): Promise<void> {
    return this.change((s, events, tx) => {
      const d = Ldm.find(s, name);
      if (name === PRIMARY) refuse(m.controlDomain('stopped'));
      if (d.state !== 'active') refuse(m.notActive(name));
      refuseWhileMigrationRuns(s, name, 'stopped');
      d.state = 'bound';
      tx.after.push(() => this.guests.stop(name));
      events.push({ class: 'domain', action: 'stop-domain', domain: name });
    });
  }

  // ── CPUs, crypto units, memory ──────────────────────────────────────────

  /** add-/set-/remove-vcpu: `op` gives the new count from the old one. */
  setVcpus(name: string, action: 'add' | 'set' | 'remove', count: number, wholeCores: boolean): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const tpc = this.machine.cpu.threadsPerCore;
      const current = d.wholeCores > 0 ? d.wholeCores : d.vcpus;
      const unit = wholeCores ? d.wholeCores : d.vcpus;
      if (wholeCores !== d.wholeCores > 0 && current > 0 && action !== 'set') refuse(m.mixedCpuUnits(name));
      const next = amount(name, 'virtual CPU count', action === 'add' ? unit + count : action === 'set' ? count : unit - count);
      if (next < 0) refuse(m.removeTooMany(name, 'virtual CPUs', count, unit));
      if (next === 0 && d.state !== 'inactive') refuse(m.lastCpu(name));
      if (wholeCores) checkMaxCores(d, next);
      d.wholeCores = wholeCores ? next : 0;
      d.vcpus = wholeCores ? amount(name, 'virtual CPU count', next * tpc) : next;
      if (d.bindings) this.rebindStrands(s, d);
      events.push({ class: 'resource', action: `${action}-vcpu`, domain: name, type: 'cpu', props: {}, units: String(d.vcpus) });
    });
  }

  private rebindStrands(s: LdmState, d: DomainConfig): void {
    const b = d.bindings!;
    const tpc = this.machine.cpu.threadsPerCore;
    // Everything not bound to another domain, the domain's own strands included.
    const available = freeStrands(this.machine, s, d.name);
    b.strands = this.allocating(d.name, () => {
      if (d.wholeCores > 0) {
        // Keep the whole cores the domain has; take more whole cores, or drop the last ones.
        const owned = [...new Set(b.strands.map((x) => coreOf(this.machine, x)))].filter(
          (c) => b.strands.filter((x) => coreOf(this.machine, x) === c).length === tpc,
        );
        const keep = owned.slice(0, d.wholeCores);
        const more = d.wholeCores - keep.length;
        const extra = more > 0 ? allocateStrands(this.machine, available.filter((x) => !keep.includes(coreOf(this.machine, x))), 0, more) : [];
        return [...keep.flatMap((c) => Array.from({ length: tpc }, (_, i) => c * tpc + i)), ...extra];
      }
      if (d.vcpus <= b.strands.length) return b.strands.slice(0, d.vcpus);
      const have = new Set(b.strands);
      return [...b.strands, ...allocateStrands(this.machine, available.filter((x) => !have.has(x)), d.vcpus - b.strands.length, 0)];
    });
    // Crypto units serve the cores the domain still has.
    b.mau = this.allocating(d.name, () => allocateMau(this.machine, s, d.name, b.strands, d.mau));
  }

  setMau(name: string, action: 'add' | 'set' | 'remove', count: number): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const next = amount(name, 'crypto unit count', action === 'add' ? d.mau + count : action === 'set' ? count : d.mau - count);
      if (next < 0) refuse(m.removeTooMany(name, 'crypto units', count, d.mau));
      d.mau = next;
      if (d.bindings) d.bindings.mau = this.allocating(name, () => allocateMau(this.machine, s, name, d.bindings!.strands, next));
      events.push({ class: 'resource', action: `${action}-crypto`, domain: name, type: 'mau', props: {}, units: String(next) });
    });
  }

  /** add-/set-/remove-memory; on the active primary the change waits for its reboot (delayed reconfiguration). */
  setMemory(name: string, action: 'add' | 'set' | 'remove', bytes: number): Promise<{ delayed: boolean; rounded: number }> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const size = memoryAmount(name, roundMemory(bytes));
      const base = d.delayedReconf?.memory ?? d.memory;
      const next = memoryAmount(name, action === 'add' ? base + size : action === 'set' ? size : base - size);
      if (next < 0 || (action === 'remove' && size > base)) refuse(m.removeTooMany(name, 'memory', formatSize(size), formatSize(base)));
      if (next === 0 && d.state !== 'inactive') refuse(m.lastMemory(name));
      events.push({ class: 'resource', action: `${action}-memory`, domain: name, type: 'memory', props: {}, units: formatSize(next) });
      if (name === PRIMARY && d.state === 'active') {
        // Allocated now on a copy, as its reboot will: a change the next start could not make is refused here.
        if (next > d.memory) this.rebindMemory(s, structuredClone(d), next);
        d.delayedReconf = { ...d.delayedReconf, memory: next };
        return { delayed: true, rounded: size };
      }
      if (d.bindings) this.rebindMemory(s, d, next);
      d.memory = next;
      return { delayed: false, rounded: size };
    });
  }

  private rebindMemory(s: LdmState, d: DomainConfig, next: number): void {
    const b = d.bindings!;
    if (next < d.memory) {
      // Release from the highest real addresses down.
      let excess = d.memory - next;
      const blocks = [...b.memory].sort((a, c) => c.ra - a.ra);
      for (const blk of blocks) {
        const take = Math.min(blk.size, excess);
        blk.size -= take;
        excess -= take;
      }
      b.memory = blocks.filter((x) => x.size > 0).sort((a, c) => a.ra - c.ra);
    } else if (next > d.memory) {
      const end = b.memory.reduce((a, x) => Math.max(a, x.ra + x.size), RA_BASE);
      // Free means bound to nobody: the domain's own blocks are not free for it to take twice.
      const more = this.allocating(d.name, () => allocateMemory(freeMemory(this.machine, s), next - d.memory, end));
      b.memory = [...b.memory, ...more];
    }
  }

  /** Apply the primary's pending changes (its "reboot": the agent's start). */
  private async applyDelayedReconf(log: Logger): Promise<void> {
    const primary = this.domain(PRIMARY);
    if (!primary?.delayedReconf) return;
    try {
      await this.change((s) => {
        const p = Ldm.find(s, PRIMARY);
        const pending = p.delayedReconf!;
        delete p.delayedReconf;
        if (pending.io) p.io = pending.io;
        if (pending.memory !== undefined) {
          this.rebindMemory(s, p, pending.memory);
          p.memory = pending.memory;
        }
      });
    } catch (err) {
      if (!(err instanceof ModelError)) throw err;
      // Checked when it was asked, yet the machine may have changed since (a smaller
      // machine file): the control domain comes up as it was, rather than not at all.
      await this.change((s) => void delete Ldm.find(s, PRIMARY).delayedReconf);
      log.warn(modelMessages.reconfDropped(PRIMARY, err.message));
    }
  }

  removeReconf(name: string): Promise<void> {
    return this.change((s) => {
      const d = Ldm.find(s, name);
      if (!d.delayedReconf) refuse(m.noReconf(name));
      delete d.delayedReconf;
    });
  }

  // ── physical I/O ────────────────────────────────────────────────────────

  /**
   * add-io/remove-io: a guest must be inactive; on the primary the change
   * waits for its reboot (delayed reconfiguration) and can be cancelled.
   */
  setIo(name: string, action: 'add' | 'remove', asked: string): Promise<{ delayed: boolean }> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const delayed = name === PRIMARY;
      const owned = delayed ? (d.delayedReconf?.io ?? d.io) : d.io;
      // A bus may be named by its pseudonym (pci_0); virtual functions are devices like the others.
      const device = findIo(this.machine, s, asked)?.name ?? asked;
      if (action === 'add') {
        assignable(this.machine, s, device);
        // Owned now or after a pending reboot, by another domain or already by this one.
        const owner = owned.includes(device) ? d : s.domains.find((o) => o !== d && (o.io.includes(device) || o.delayedReconf?.io?.includes(device)));
        if (owner) refuse(m.ioInUse(device, owner.name));
      } else {
        if (!owned.includes(device)) refuse(m.ioNotAssigned(device, name));
        checkRemovable(this.machine, s, device);
      }
      if (!delayed && d.state !== 'inactive') refuse(m.onlyWhenInactive(name, 'physical I/O', d.state));
      if (action === 'add') applyRcAddPolicy(this.machine, s, device, d.rcAddPolicy);
      const next = action === 'add' ? [...owned, device] : owned.filter((x) => x !== device);
      if (delayed) d.delayedReconf = { ...d.delayedReconf, io: next };
      else d.io = next;
      events.push({ class: 'resource', action: `${action}-io`, domain: name, type: 'physio_device', props: { name: device } });
      return { delayed };
    });
  }

  // ── SR-IOV: virtual functions and device properties (agent/model/iov.ts) ─

  /** How the SR-IOV code takes and checks MAC addresses in a draft. */
  private static macs(s: LdmState): MacSource {
    return { next: () => nextMac(s), check: (mac) => checkMac(s, mac) };
  }

  /** The domain an event about a device names: the one that owns it, else the control domain. */
  private static ioDomain(s: LdmState, device: string): string {
    return s.domains.find((d) => d.io.includes(device))?.name ?? PRIMARY;
  }

  /** create-vf: `count` new virtual functions (`max`: as many as are left) on a physical function. */
  createVf(pf: string, count: number | 'max', props: [string, string][]): Promise<string[]> {
    return this.change((s, events) => {
      const dev = findIo(this.machine, s, pf);
      // The root domain (the endpoint's owner) changes: not while the primary waits for its reboot, unless it is the primary.
      const root = Ldm.ioDomain(s, dev?.kind === 'pf' ? dev.endpoint.name : pf);
      Ldm.checkReconf(s, root);
      const created = createVfs(this.machine, s, pf, count, props, Ldm.macs(s));
      for (const vf of created) events.push({ class: 'resource', action: 'create-vf', domain: root, type: 'physio_device', props: { name: vf } });
      return created;
    });
  }

  /** destroy-vf: the last virtual function of a physical function (or the last `count`). */
  destroyVf(name: string, count?: number | 'max'): Promise<string[]> {
    return this.change((s, events) => {
      const dev = findIo(this.machine, s, name);
      const endpoint = dev?.kind === 'vf' ? dev.pf.endpoint.name : dev?.kind === 'pf' ? dev.endpoint.name : name;
      Ldm.checkReconf(s, Ldm.ioDomain(s, endpoint));
      const destroyed = destroyVfs(this.machine, s, name, count);
      for (const vf of destroyed) events.push({ class: 'resource', action: 'destroy-vf', domain: Ldm.ioDomain(s, endpoint), type: 'physio_device', props: { name: vf } });
      return destroyed;
    });
  }

  /** set-io: properties of a bus, a physical function or a virtual function. */
  setIoProps(name: string, props: [string, string][]): Promise<void> {
    return this.change((s, events) => {
      const dev = findIo(this.machine, s, name) ?? refuse(m.noSuchIo(name));
      Ldm.checkReconf(s, Ldm.ioDomain(s, dev.kind === 'vf' ? dev.pf.endpoint.name : dev.kind === 'pf' ? dev.endpoint.name : dev.name));
      if (dev.kind === 'vf') {
        const owner = s.domains.find((d) => d.io.includes(dev.name));
        if (owner && owner.state === 'active' && owner.name !== PRIMARY) refuse(m.vfInActiveDomain(dev.name, owner.name));
      }
      if (props.length === 0) refuse(m.ioPropertyUnknown('(none given)', dev.name, settableKeys(dev)));
      applyIoProps(this.machine, s, dev, props, Ldm.macs(s));
      events.push({ class: 'resource', action: 'set-io', domain: Ldm.ioDomain(s, dev.name), type: 'physio_device', props: { name: dev.name } });
    });
  }

  // ── virtual disk servers, volumes, disks ────────────────────────────────

  addVds(service: string, domain: string): Promise<void> {
    return this.change((s, events) => {
      Ldm.find(s, domain);
      if (!NAME_RE.test(service)) refuse(m.invalidServiceName(service));
      if (serviceExists(s, service)) refuse(m.serviceExists(service));
      s.vds.push({ name: service, domain, volumes: [] });
      events.push({ class: 'resource', action: 'add-vdiskserver', domain, type: 'vds', props: { service_name: service } });
    });
  }

  removeVds(service: string): Promise<void> {
    return this.change((s, events) => {
      const vds = s.vds.find((v) => v.name === service) ?? refuse(m.noSuchVds(service));
      const users = s.domains.filter((d) => d.vdisks.some((v) => v.service === service)).map((d) => d.name);
      if (users.length > 0) refuse(m.serviceInUse(service, users));
      s.vds = s.vds.filter((v) => v !== vds);
      events.push({ class: 'resource', action: 'remove-vdiskserver', domain: vds.domain, type: 'vds', props: { service_name: service } });
    });
  }

  addVolume(service: string, volume: string, blockDev: string, options: string[], mpgroup?: string): Promise<void> {
    return this.change((s, events) => {
      const vds = s.vds.find((v) => v.name === service) ?? refuse(m.noSuchVds(service));
      if (!NAME_RE.test(volume)) refuse(m.invalidServiceName(volume));
      if (vds.volumes.some((v) => v.name === volume)) refuse(m.volumeExists(volume, service));
      const bad = options.filter((o) => !['ro', 'slice', 'excl'].includes(o));
      if (bad.length > 0) refuse(m.badVolumeOptions(bad));
      vds.volumes.push({ name: volume, blockDev, options, ...(mpgroup ? { mpgroup } : {}) });
      events.push({ class: 'resource', action: 'add-vdiskserverdevice', domain: vds.domain, type: 'vds_volume', props: { vol_name: volume, service_name: service } });
    });
  }

  removeVolume(service: string, volume: string): Promise<void> {
    return this.change((s, events) => {
      const vds = s.vds.find((v) => v.name === service) ?? refuse(m.noSuchVds(service));
      volumeOf(s, volume, service);
      const users = s.domains.filter((d) => d.vdisks.some((v) => v.service === service && v.volume === volume)).map((d) => d.name);
      if (users.length > 0) refuse(m.serviceInUse(`${volume}@${service}`, users));
      vds.volumes = vds.volumes.filter((v) => v.name !== volume);
      events.push({ class: 'resource', action: 'remove-vdiskserverdevice', domain: vds.domain, type: 'vds_volume', props: { vol_name: volume, service_name: service } });
    });
  }

  addVdisk(name: string, disk: string, volume: string, service: string, timeout?: number): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      if (!NAME_RE.test(disk)) refuse(m.invalidServiceName(disk));
      if (d.vdisks.some((v) => v.name === disk)) refuse(m.deviceExists('vdisk', disk, name));
      roomFor(d, 'vdisk', d.vdisks);
      volumeOf(s, volume, service);
      d.vdisks.push({ name: disk, volume, service, ...(timeout !== undefined ? { timeout } : {}), id: freeDeviceId(d.vdisks) });
      events.push({ class: 'resource', action: 'add-vdisk', domain: name, type: 'disk', props: { vdisk_name: disk } });
    });
  }

  removeVdisk(name: string, disk: string): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      if (!d.vdisks.some((v) => v.name === disk)) refuse(m.noSuchDevice('vdisk', disk, name));
      d.vdisks = d.vdisks.filter((v) => v.name !== disk);
      events.push({ class: 'resource', action: 'remove-vdisk', domain: name, type: 'disk', props: { vdisk_name: disk } });
    });
  }

  // ── virtual switches and networks ───────────────────────────────────────

  addVsw(service: string, domain: string, opts: Partial<Omit<VswConfig, 'name' | 'domain' | 'id'>>): Promise<void> {
    return this.change((s, events) => {
      Ldm.find(s, domain);
      if (!NAME_RE.test(service)) refuse(m.invalidServiceName(service));
      if (serviceExists(s, service)) refuse(m.serviceExists(service));
      const mac = opts.mac ? checkMac(s, opts.mac) : nextMac(s);
      const id = s.vsw.filter((w) => w.domain === domain).length;
      s.vsw.push({ ...opts, name: service, domain, mac, id });
      events.push({ class: 'resource', action: 'add-vswitch', domain, type: 'vsw', props: { service_name: service } });
    });
  }

  setVsw(service: string, opts: Partial<Omit<VswConfig, 'name' | 'domain' | 'id'>>): Promise<void> {
    return this.change((s, events) => {
      const vsw = s.vsw.find((w) => w.name === service) ?? refuse(m.noSuchVsw(service));
      if (opts.mac && opts.mac !== vsw.mac) opts.mac = checkMac(s, opts.mac);
      Object.assign(vsw, opts);
      events.push({ class: 'resource', action: 'set-vswitch', domain: vsw.domain, type: 'vsw', props: { service_name: service } });
    });
  }

  removeVsw(service: string): Promise<void> {
    return this.change((s, events) => {
      const vsw = s.vsw.find((w) => w.name === service) ?? refuse(m.noSuchVsw(service));
      const users = s.domains.filter((d) => d.vnets.some((n) => n.service === service)).map((d) => d.name);
      if (users.length > 0) refuse(m.serviceInUse(service, users));
      s.vsw = s.vsw.filter((w) => w !== vsw);
      events.push({ class: 'resource', action: 'remove-vswitch', domain: vsw.domain, type: 'vsw', props: { service_name: service } });
    });
  }

  addVnet(name: string, vnet: string, service: string, opts: { mac?: string; pvid?: number; vid?: string; mode?: string; linkprop?: string }): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      if (!NAME_RE.test(vnet)) refuse(m.invalidServiceName(vnet));
      if (d.vnets.some((n) => n.name === vnet)) refuse(m.deviceExists('vnet', vnet, name));
      roomFor(d, 'vnet', d.vnets);
      if (!s.vsw.some((w) => w.name === service)) refuse(m.noSuchVsw(service));
      const mac = opts.mac ? checkMac(s, opts.mac) : nextMac(s);
      d.vnets.push({ ...stripUndefined(opts), name: vnet, service, mac, id: freeDeviceId(d.vnets) });
      events.push({ class: 'resource', action: 'add-vnet', domain: name, type: 'network', props: { vnet_name: vnet } });
    });
  }

  setVnet(name: string, vnet: string, opts: { service?: string; mac?: string; pvid?: number; vid?: string; mode?: string; linkprop?: string }): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const n = d.vnets.find((x) => x.name === vnet) ?? refuse(m.noSuchDevice('vnet', vnet, name));
      if (opts.service && !s.vsw.some((w) => w.name === opts.service)) refuse(m.noSuchVsw(opts.service));
      if (opts.mac && opts.mac !== n.mac) opts.mac = checkMac(s, opts.mac);
      Object.assign(n, stripUndefined(opts));
      events.push({ class: 'resource', action: 'set-vnet', domain: name, type: 'network', props: { vnet_name: vnet } });
    });
  }

  removeVnet(name: string, vnet: string): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      if (!d.vnets.some((n) => n.name === vnet)) refuse(m.noSuchDevice('vnet', vnet, name));
      d.vnets = d.vnets.filter((n) => n.name !== vnet);
      events.push({ class: 'resource', action: 'remove-vnet', domain: name, type: 'network', props: { vnet_name: vnet } });
    });
  }

  // ── consoles ────────────────────────────────────────────────────────────

  addVcc(service: string, domain: string, minPort: number, maxPort: number): Promise<void> {
    return this.change((s, events) => {
      Ldm.find(s, domain);
      if (!NAME_RE.test(service)) refuse(m.invalidServiceName(service));
      if (serviceExists(s, service)) refuse(m.serviceExists(service));
      checkPorts(s, service, minPort, maxPort);
      s.vcc.push({ name: service, domain, minPort, maxPort });
      events.push({ class: 'resource', action: 'add-vconscon', domain, type: 'vcc', props: { service_name: service } });
    });
  }

  setVcc(service: string, minPort: number | undefined, maxPort: number | undefined): Promise<void> {
    return this.change((s, events) => {
      const vcc = s.vcc.find((v) => v.name === service) ?? refuse(m.noSuchVcc(service));
      const min = minPort ?? vcc.minPort;
      const max = maxPort ?? vcc.maxPort;
      checkPorts(s, service, min, max);
      const outside = s.domains.filter((d) => d.bindings?.consoleService === service && (d.bindings.consolePort! < min || d.bindings.consolePort! > max));
      if (outside.length > 0) refuse(m.serviceInUse(service, outside.map((d) => d.name)));
      vcc.minPort = min;
      vcc.maxPort = max;
      events.push({ class: 'resource', action: 'set-vconscon', domain: vcc.domain, type: 'vcc', props: { service_name: service } });
    });
  }

  removeVcc(service: string): Promise<void> {
    return this.change((s, events) => {
      const vcc = s.vcc.find((v) => v.name === service) ?? refuse(m.noSuchVcc(service));
      const users = s.domains.filter((d) => d.bindings?.consoleService === service).map((d) => d.name);
      if (users.length > 0) refuse(m.serviceInUse(service, users));
      s.vcc = s.vcc.filter((v) => v !== vcc);
      events.push({ class: 'resource', action: 'remove-vconscon', domain: vcc.domain, type: 'vcc', props: { service_name: service } });
    });
  }

  setVconsole(name: string, opts: { port?: number; service?: string; group?: string; log?: boolean }): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      if (opts.service && !s.vcc.some((v) => v.name === opts.service)) refuse(m.noSuchVcc(opts.service));
      if ((opts.port !== undefined || opts.service) && d.state === 'active') refuse(m.onlyWhenNotActive(name, 'console port'));
      Object.assign(d.console, stripUndefined(opts));
      if (d.bindings && (opts.port !== undefined || opts.service)) {
        const c = this.allocating(name, () => allocateConsole(s, d));
        if (opts.port !== undefined && c.port !== opts.port) refuse(m.portTaken(opts.port));
        d.bindings.consolePort = c.port;
        d.bindings.consoleService = c.service;
      }
      events.push({ class: 'resource', action: 'set-vconsole', domain: name, type: 'console', props: d.bindings?.consolePort !== undefined ? { port: String(d.bindings.consolePort) } : {} });
    });
  }

  // ── variables ───────────────────────────────────────────────────────────

  /** add-/set-/remove-variable of one or more variables: all of them or none. */
  setVariables(name: string, action: 'add' | 'set' | 'remove', pairs: [variable: string, value: string][]): Promise<void> {
    return this.change((s, events, tx) => {
      const d = Ldm.find(s, name);
      for (const [variable, value] of pairs) {
        const at = d.variables.findIndex(([k]) => k === variable);
        if (action === 'add' && at >= 0) refuse(m.variableExists(variable, name));
        if (action === 'remove') {
          if (at < 0) refuse(m.noSuchVariable(variable, name));
          d.variables.splice(at, 1);
        } else putVariable(d, variable, value);
        events.push({ class: 'resource', action: `${action}-variable`, domain: name, type: 'var', props: action === 'remove' ? { name: variable } : { name: variable, value } });
      }
      this.checkGuest(d);
      if (d.state === 'active') tx.after.push(() => this.guests.reconfigure?.(d));
    });
  }

  // ── SP configurations ───────────────────────────────────────────────────

  addSpconfig(name: string): Promise<void> {
    return this.change((s, events) => {
      if (!NAME_RE.test(name)) refuse(m.invalidServiceName(name));
      if (name === FACTORY_DEFAULT || s.spconfigs.some((c) => c.name === name)) refuse(m.spconfigExists(name));
      s.spconfigs.push({ name, saved: JSON.stringify(s.domains.map((d) => ({ ...d, bindings: undefined, migration: undefined }))) });
      s.nextSpconfig = name;
      events.push({ class: 'hardware', action: 'add-spconfig', spconfig: name });
    });
  }

  setSpconfig(name: string): Promise<void> {
    return this.change((s, events) => {
      if (name !== FACTORY_DEFAULT && !s.spconfigs.some((c) => c.name === name)) refuse(m.noSuchSpconfig(name));
      s.nextSpconfig = name;
      events.push({ class: 'hardware', action: 'set-spconfig', spconfig: name });
    });
  }

  removeSpconfig(name: string): Promise<void> {
    return this.change((s, events) => {
      if (name === FACTORY_DEFAULT) refuse(m.cannotRemoveFactory());
      if (!s.spconfigs.some((c) => c.name === name)) refuse(m.noSuchSpconfig(name));
      s.spconfigs = s.spconfigs.filter((c: SpConfig) => c.name !== name);
      if (s.nextSpconfig === name) s.nextSpconfig = FACTORY_DEFAULT;
      events.push({ class: 'hardware', action: 'remove-spconfig', spconfig: name });
    });
  }
}

// ── helpers on a draft state ──────────────────────────────────────────────

/**
 * A state saved by an earlier version, brought up to this one: domain
 * properties added since get their defaults; the old shared device counter
 * goes (disks and networks keep the ids they were given).
 */
function upgradeState(s: LdmState): LdmState {
  for (const d of s.domains) {
    upgradeDomain(d, d.name === PRIMARY);
    delete d.nextDeviceId;
  }
  return s;
}

function initialState(machine: MachineSpec): LdmState {
  const s: LdmState = {
    version: 1,
    domains: [],
    vds: [],
    vsw: [],
    vcc: [],
    spconfigs: [],
    nextSpconfig: FACTORY_DEFAULT,
    ...identityCounters(machine),
  };
  const strands = Array.from({ length: machine.primary.vcpus }, (_, i) => i);
  const primary: DomainConfig = {
    name: PRIMARY,
    uuid: nextUuid(s, machine, PRIMARY),
    hostid: machine.hostid,
    mac: nextMac(s),
    state: 'active',
    ...defaultProps(true),
    vcpus: machine.primary.vcpus,
    wholeCores: 0,
    memory: roundMemory(machine.primary.memory),
    mau: 0,
    // The control domain owns every physical device until some are given away.
    io: machine.io.map((d) => d.name),
    vdisks: [],
    vnets: [],
    console: {},
    variables: [],
  };
  s.domains.push(primary);
  primary.bindings = {
    strands,
    memory: allocateMemory(freeMemory(machine, s), primary.memory),
    mau: [],
  };
  return s;
}

/**
 * Where a fresh state's automatic MAC addresses and host ids start: a place in
 * each range derived from a hash of the machine's host id (its value, so
 * `0x84F8A2C3` and `84f8a2c3` agree; the host name plays no part). Two machines
 * with different host ids draw from different places, so a domain migrated
 * from one to the other rarely meets the target's own addresses and host ids
 * (a hash, not a promise: the migration checks still refuse one in use); the
 * same machine file gives the same sequence. Each counter then goes up from its start, round its
 * range once at most, skipping what is in use. A saved state keeps its
 * counters: an older one (counters from 1) just goes on.
 */
function identityCounters(machine: Pick<MachineSpec, 'hostid'>): Pick<LdmState, 'nextMac' | 'nextHostid'> {
  const start = (what: string, count: number) => createHash('sha256').update(`${what}/${hostidValue(machine.hostid).toString(16)}`).digest().readUInt32BE(0) % count;
  return {
    nextMac: start('mac', AUTO_MAC_COUNT),
    nextHostid: (start('hostid', AUTO_HOSTID_COUNT) - HOSTID_SHIFT + AUTO_HOSTID_COUNT) % AUTO_HOSTID_COUNT,
  };
}

const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');

/** Automatic address number `n` (0 to AUTO_MAC_COUNT - 1): MAC_FIRST + n, as six bytes. */
const autoMac = (n: number) => hex(MAC_FIRST + n, 12).match(/../g)!.join(':');

/** The next free automatic MAC address, going round the range once at most: when none is free, a refusal. */
function nextMac(s: LdmState): string {
  const used = macsInUse(s);
  for (let tried = 0; tried < AUTO_MAC_COUNT; tried++) {
    const n = s.nextMac % AUTO_MAC_COUNT;
    s.nextMac = n + 1;
    const mac = autoMac(n);
    if (!used.has(mac)) {
      used.add(mac);
      return mac;
    }
  }
  return refuse(m.noFreeMac(AUTO_MAC_COUNT, autoMac(0), autoMac(AUTO_MAC_COUNT - 1)));
}

/**
 * A draft's MAC addresses in use, gathered once per draft and kept up to date
 * by nextMac and checkMac: a request adding many domains or vnets stays linear.
 * An address given up within the same change stays counted until the next
 * change (drafts live for one change): at worst a refusal, never a duplicate.
 */
const macSets = new WeakMap<LdmState, Set<string>>();
function macsInUse(s: LdmState): Set<string> {
  let used = macSets.get(s);
  if (!used) macSets.set(s, (used = allMacs(s)));
  return used;
}

/**
 * A domain's UUID: unique on this machine and reproducible (a hash of the
 * machine's host id, the domain's name and a sequence number), so that a
 * replayed configuration lists the same way.
 */
function nextUuid(s: LdmState, machine: MachineSpec, name: string): string {
  const h = createHash('sha256').update(`${machine.hostid}/${name}/${s.nextHostid}`).digest('hex');
  // A version 8 UUID (RFC 9562 section 5.8: custom, here hash-derived), with the RFC variant bits.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The next automatic host id; one in use (the machine's own, or one a user
 * gave) is skipped, as host ids are unique by value. The search ends: at most
 * MAX_DOMAINS_CEILING host ids are in use, far fewer than AUTO_HOSTID_COUNT.
 * The counter itself only grows (it also numbers UUIDs: nextUuid).
 */
function nextHostid(s: LdmState, inUse: ReadonlySet<number>): string {
  for (;;) {
    const value = HOSTID_FIRST + ((s.nextHostid++ + HOSTID_SHIFT) % AUTO_HOSTID_COUNT);
    if (!inUse.has(value)) return `0x${hex(value, 8)}`;
  }
}

function allMacs(s: LdmState): Set<string> {
  return new Set([...s.domains.map((d) => d.mac), ...s.domains.flatMap((d) => d.vnets.map((n) => n.mac)), ...s.vsw.map((w) => w.mac), ...vfMacs(s)]);
}

/** A MAC address given by the user: well-formed and not in use on this machine. */
function checkMac(s: LdmState, mac: string): string {
  const norm = mac.toLowerCase();
  if (!/^([0-9a-f]{1,2}:){5}[0-9a-f]{1,2}$/.test(norm)) refuse(m.badMac(mac));
  const canonical = norm.split(':').map((b) => b.padStart(2, '0')).join(':');
  const used = macsInUse(s);
  if (used.has(canonical)) refuse(m.macInUse(canonical));
  used.add(canonical);
  return canonical;
}

/** A count or size the model keeps: refused beyond MAX_AMOUNT, where the saved state would not load back exactly. */
function amount(name: string, what: string, n: number): number {
  if (n > MAX_AMOUNT) refuse(m.amountTooLarge(name, what, String(n), String(MAX_AMOUNT)));
  return n;
}

function memoryAmount(name: string, bytes: number): number {
  if (bytes > MAX_AMOUNT) refuse(m.amountTooLarge(name, 'memory', formatSize(bytes), `${MAX_AMOUNT} bytes`));
  return bytes;
}

/** One variable within the limits of agent/model/limits.ts (sizes in UTF-8 bytes, as saved). */
function checkVariable(variable: string, value: string): void {
  const nameBytes = Buffer.byteLength(variable);
  if (nameBytes > MAX_VARIABLE_NAME_BYTES) refuse(m.variableNameTooLong(variable, nameBytes, MAX_VARIABLE_NAME_BYTES));
  const valueBytes = Buffer.byteLength(value);
  if (valueBytes > MAX_VARIABLE_VALUE_BYTES) refuse(m.variableValueTooLong(variable, valueBytes, MAX_VARIABLE_VALUE_BYTES));
}

/** Room for one more virtual disk or network: checked per device, so that a request of thousands stops at the limit. */
function roomFor(d: DomainConfig, kind: 'vdisk' | 'vnet', devices: readonly unknown[]): void {
  if (devices.length >= MAX_DEVICES_PER_DOMAIN) refuse(m.tooManyDevices(kind, d.name, MAX_DEVICES_PER_DOMAIN));
}

/** Set or add one variable of a draft domain; refused past MAX_VARIABLES_PER_DOMAIN (checked per variable, so a long request stops early). */
function putVariable(d: DomainConfig, variable: string, value: string): void {
  checkVariable(variable, value);
  const at = d.variables.findIndex(([k]) => k === variable);
  if (at >= 0) d.variables[at] = [variable, value];
  else if (d.variables.length >= MAX_VARIABLES_PER_DOMAIN) refuse(m.tooManyVariables(d.name, MAX_VARIABLES_PER_DOMAIN));
  else d.variables.push([variable, value]);
}

function applyConstraints(s: LdmState, d: DomainConfig, c: DomainConstraints, machine: MachineSpec): void {
  if (c.wholeCores) {
    d.wholeCores = amount(d.name, 'whole core count', c.wholeCores);
    checkMaxCores(d, d.wholeCores);
    d.vcpus = amount(d.name, 'virtual CPU count', c.wholeCores * machine.cpu.threadsPerCore);
  } else if (c.vcpus !== undefined) d.vcpus = amount(d.name, 'virtual CPU count', c.vcpus);
  if (c.memory !== undefined) d.memory = memoryAmount(d.name, roundMemory(c.memory));
  if (c.mau !== undefined) d.mau = amount(d.name, 'crypto unit count', c.mau);
  for (const name of c.io ?? []) {
    const io = assignable(machine, s, name);
    const owner = s.domains.find((o) => o.io.includes(io) || o.delayedReconf?.io?.includes(io));
    if (owner) refuse(m.ioInUse(io, owner.name));
    d.io.push(io);
    applyRcAddPolicy(machine, s, io, d.rcAddPolicy);
  }
  for (const v of c.vdisks ?? []) {
    if (d.vdisks.some((x) => x.name === v.name)) refuse(m.deviceExists('vdisk', v.name, d.name));
    roomFor(d, 'vdisk', d.vdisks);
    volumeOf(s, v.volume, v.service);
    d.vdisks.push({ ...stripUndefined(v), id: freeDeviceId(d.vdisks) });
  }
  for (const n of c.vnets ?? []) {
    if (d.vnets.some((x) => x.name === n.name)) refuse(m.deviceExists('vnet', n.name, d.name));
    roomFor(d, 'vnet', d.vnets);
    if (!s.vsw.some((w) => w.name === n.service)) refuse(m.noSuchVsw(n.service));
    const mac = n.mac ? checkMac(s, n.mac) : nextMac(s);
    d.vnets.push({ ...stripUndefined(n), mac, id: freeDeviceId(d.vnets) });
  }
  for (const [k, v] of c.variables ?? []) putVariable(d, k, v);
  if (c.console) {
    if (c.console.service && !s.vcc.some((v) => v.name === c.console!.service)) refuse(m.noSuchVcc(c.console.service));
    Object.assign(d.console, stripUndefined(c.console));
  }
}

/**
 * A new virtual disk's or network's device id: the lowest one its kind does
 * not use in the domain. Disks and networks are numbered apart, as Oracle
 * does (a domain's first disk is disk@0 and its first network network@0).
 */
function freeDeviceId(devices: readonly { id: number }[]): number {
  const used = new Set(devices.map((x) => x.id));
  let id = 0;
  while (used.has(id)) id++;
  return id;
}

function serviceExists(s: LdmState, name: string): boolean {
  return [...s.vds, ...s.vsw, ...s.vcc].some((x: VdsConfig | VswConfig | VccConfig) => x.name === name);
}

function servicesOf(s: LdmState, domain: string): string[] {
  return [...s.vds, ...s.vsw, ...s.vcc].filter((x) => x.domain === domain).map((x) => x.name);
}

function volumeOf(s: LdmState, volume: string, service: string) {
  const vds = s.vds.find((v) => v.name === service) ?? refuse(m.noSuchVolume(volume, service));
  return vds.volumes.find((v) => v.name === volume) ?? refuse(m.noSuchVolume(volume, service));
}

function checkPorts(s: LdmState, service: string, min: number, max: number): void {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) refuse(m.badPortRange(min, max));
  const overlap = s.vcc.find((v) => v.name !== service && v.minPort <= max && min <= v.maxPort);
  if (overlap) refuse(m.portRangeOverlap(overlap.name));
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
