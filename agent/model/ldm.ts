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
import { refusalMessages as m } from '../messages.ts';
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
import type { MachineSpec } from './machine.ts';
import { formatSize } from './sizes.ts';
import type { StateStore } from './store.ts';
import type { CpuArch, DomainConfig, FailurePolicy, LdmState, SpConfig, VccConfig, VdsConfig, VswConfig } from './types.ts';

export const PRIMARY = 'primary';
export const FACTORY_DEFAULT = 'factory-default';

/** A refusal: the change is not made; the text is what the client reads. */
export class ModelError extends LdmError {
  constructor(message: string) {
    super(ErrorCodes.REFUSED, message);
    this.name = 'ModelError';
  }
}

const refuse = (message: string): never => {
  throw new ModelError(message);
};

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
  | { class: 'hardware'; action: string; spconfig: string };

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
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.+-]{0,63}$/;
const FAILURE_POLICIES: readonly FailurePolicy[] = ['ignore', 'panic', 'reset', 'stop'];
const CPU_ARCHS: readonly CpuArch[] = ['native', 'generic', 'migration-class1'];
/** Oracle's range for automatically assigned MAC addresses. */
const MAC_PREFIX = [0x00, 0x14, 0x4f, 0xf8];

export interface DomainProps {
  failurePolicy?: string;
  master?: string;
  hostid?: string;
  mac?: string;
  cpuArch?: string;
  perfCounters?: string;
}

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

  private constructor(
    readonly machine: MachineSpec,
    state: LdmState,
    private readonly store: StateStore,
    private readonly emit: (ev: ModelEvent) => void,
    private readonly guests: GuestHost,
  ) {
    this.state = state;
  }

  /**
   * Open the model of `store`: the saved state, or on the first start the
   * primary domain as the machine describes it. Domains that were active when
   * the agent stopped are restarted (announced as `domain-reset`).
   */
  static async open(machine: MachineSpec, store: StateStore, emit: (ev: ModelEvent) => void, guests: GuestHost): Promise<Ldm> {
    const saved = await store.load();
    const state = saved ?? initialState(machine);
    if (!saved) await store.save(state);
    const ldm = new Ldm(machine, state, store, emit, guests);
    if (saved) await ldm.applyDelayedReconf();
    for (const d of state.domains) {
      if (d.state === 'active' && d.name !== PRIMARY) {
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

  /**
   * Oracle's six flag columns: starting/stopping, normal (`n`), delayed
   * reconfiguration (`d`), control domain (`c`), virtual I/O service (`v`),
   * migration (`s` source, `t` target, `e` error; none yet).
   */
  flags(d: DomainConfig): string {
    const provides = [...this.state.vds, ...this.state.vsw, ...this.state.vcc].some((s) => s.domain === d.name);
    return [
      '-',
      d.state === 'active' ? 'n' : '-',
      d.delayedReconf ? 'd' : '-',
      d.name === PRIMARY ? 'c' : '-',
      provides ? 'v' : '-',
      '-',
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
      try {
        await this.store.save(draft);
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

  /**
   * A failed save may have replaced the file already (a failure after the
   * rename): write the acknowledged state back, so that a refused change
   * cannot come back at the next start. If that fails too, the next
   * successful save (every save writes the whole state) sets it right.
   */
  private async rollBack(): Promise<void> {
    await this.store.save(this.state).catch(() => {});
  }

  private static find(s: LdmState, name: string): DomainConfig {
    return s.domains.find((d) => d.name === name) ?? refuse(m.noSuchDomain(name));
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
      for (const { name, props = {}, constraints = {} } of list) this.addOne(s, events, name, props, constraints);
    });
  }

  private addOne(s: LdmState, events: ModelEvent[], name: string, props: DomainProps, constraints: DomainConstraints): void {
    {
      if (!NAME_RE.test(name)) refuse(m.invalidName(name));
      if (s.domains.some((d) => d.name === name)) refuse(m.domainExists(name));
      Ldm.checkReconf(s, name);
      const d: DomainConfig = {
        name,
        uuid: nextUuid(s, this.machine, name),
        hostid: nextHostid(s),
        mac: nextMac(s),
        state: 'inactive',
        failurePolicy: 'ignore',
        master: [],
        cpuArch: 'native',
        perfCounters: 'global',
        vcpus: 0,
        wholeCores: 0,
        memory: 0,
        mau: 0,
        io: [],
        vdisks: [],
        vnets: [],
        console: {},
        variables: [],
        nextDeviceId: 0,
      };
      applyProps(s, d, props);
      s.domains.push(d);
      applyConstraints(s, d, constraints, this.machine);
      this.checkGuest(d);
      events.push({ class: 'domain', action: 'add-domain', domain: name });
    }
  }

  setDomain(name: string, props: DomainProps): Promise<void> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      for (const [key, value] of [['hostid', props.hostid], ['mac-addr', props.mac], ['cpu-arch', props.cpuArch]] as const) {
        if (value !== undefined && d.state !== 'inactive') refuse(m.onlyWhenInactive(name, key, d.state));
      }
      applyProps(s, d, props);
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
      const next = action === 'add' ? unit + count : action === 'set' ? count : unit - count;
      if (next < 0) refuse(m.removeTooMany(name, 'virtual CPUs', count, unit));
      if (next === 0 && d.state !== 'inactive') refuse(m.lastCpu(name));
      d.wholeCores = wholeCores ? next : 0;
      d.vcpus = wholeCores ? next * tpc : next;
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
      const next = action === 'add' ? d.mau + count : action === 'set' ? count : d.mau - count;
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
      const size = roundMemory(bytes);
      const base = d.delayedReconf?.memory ?? d.memory;
      const next = action === 'add' ? base + size : action === 'set' ? size : base - size;
      if (next < 0 || (action === 'remove' && size > base)) refuse(m.removeTooMany(name, 'memory', formatSize(size), formatSize(base)));
      if (next === 0 && d.state !== 'inactive') refuse(m.lastMemory(name));
      events.push({ class: 'resource', action: `${action}-memory`, domain: name, type: 'memory', props: {}, units: formatSize(next) });
      if (name === PRIMARY && d.state === 'active') {
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
  private async applyDelayedReconf(): Promise<void> {
    const primary = this.domain(PRIMARY);
    if (!primary?.delayedReconf) return;
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
  setIo(name: string, action: 'add' | 'remove', device: string): Promise<{ delayed: boolean }> {
    return this.change((s, events) => {
      const d = Ldm.find(s, name);
      Ldm.checkReconf(s, name);
      const delayed = name === PRIMARY;
      const owned = delayed ? (d.delayedReconf?.io ?? d.io) : d.io;
      if (action === 'add') {
        if (!this.machine.io.some((io) => io.name === device)) refuse(m.noSuchIo(device));
        // Owned now or after a pending reboot, by another domain or already by this one.
        const owner = owned.includes(device) ? d : s.domains.find((o) => o !== d && (o.io.includes(device) || o.delayedReconf?.io?.includes(device)));
        if (owner) refuse(m.ioInUse(device, owner.name));
      } else if (!owned.includes(device)) refuse(m.ioNotAssigned(device, name));
      if (!delayed && d.state !== 'inactive') refuse(m.onlyWhenInactive(name, 'physical I/O', d.state));
      const next = action === 'add' ? [...owned, device] : owned.filter((x) => x !== device);
      if (delayed) d.delayedReconf = { ...d.delayedReconf, io: next };
      else d.io = next;
      events.push({ class: 'resource', action: `${action}-io`, domain: name, type: 'physio_device', props: { name: device } });
      return { delayed };
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
      volumeOf(s, volume, service);
      d.vdisks.push({ name: disk, volume, service, ...(timeout !== undefined ? { timeout } : {}), id: d.nextDeviceId++ });
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
      if (!s.vsw.some((w) => w.name === service)) refuse(m.noSuchVsw(service));
      const mac = opts.mac ? checkMac(s, opts.mac) : nextMac(s);
      d.vnets.push({ ...stripUndefined(opts), name: vnet, service, mac, id: d.nextDeviceId++ });
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
        } else if (at >= 0) d.variables[at] = [variable, value];
        else d.variables.push([variable, value]);
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
      s.spconfigs.push({ name, saved: JSON.stringify(s.domains.map((d) => ({ ...d, bindings: undefined }))) });
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

function initialState(machine: MachineSpec): LdmState {
  const s: LdmState = {
    version: 1,
    domains: [],
    vds: [],
    vsw: [],
    vcc: [],
    spconfigs: [],
    nextSpconfig: FACTORY_DEFAULT,
    nextMac: 1,
    nextHostid: 1,
  };
  const strands = Array.from({ length: machine.primary.vcpus }, (_, i) => i);
  const primary: DomainConfig = {
    name: PRIMARY,
    uuid: nextUuid(s, machine, PRIMARY),
    hostid: machine.hostid,
    mac: nextMac(s),
    state: 'active',
    failurePolicy: 'ignore',
    master: [],
    cpuArch: 'native',
    perfCounters: 'global',
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
    nextDeviceId: 0,
  };
  s.domains.push(primary);
  primary.bindings = {
    strands,
    memory: allocateMemory(freeMemory(machine, s), primary.memory),
    mau: [],
  };
  return s;
}

function nextMac(s: LdmState): string {
  const used = allMacs(s);
  for (;;) {
    const n = s.nextMac++;
    const mac = [...MAC_PREFIX, (n >> 8) & 0xff, n & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':');
    if (!used.has(mac)) return mac;
  }
}

/**
 * A domain's UUID: unique on this machine and reproducible (a hash of the
 * machine's host id, the domain's name and a sequence number), so that a
 * replayed configuration lists the same way.
 */
function nextUuid(s: LdmState, machine: MachineSpec, name: string): string {
  const h = createHash('sha256').update(`${machine.hostid}/${name}/${s.nextHostid}`).digest('hex');
  // Shaped as a version 4 (random) UUID: the hash stands in for the randomness.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function nextHostid(s: LdmState): string {
  return `0x84f8${(0x1000 + s.nextHostid++).toString(16).padStart(4, '0')}`;
}

function allMacs(s: LdmState): Set<string> {
  return new Set([...s.domains.map((d) => d.mac), ...s.domains.flatMap((d) => d.vnets.map((n) => n.mac)), ...s.vsw.map((w) => w.mac)]);
}

/** A MAC address given by the user: well-formed and not in use on this machine. */
function checkMac(s: LdmState, mac: string): string {
  const norm = mac.toLowerCase();
  if (!/^([0-9a-f]{1,2}:){5}[0-9a-f]{1,2}$/.test(norm)) refuse(m.badMac(mac));
  const canonical = norm.split(':').map((b) => b.padStart(2, '0')).join(':');
  if (allMacs(s).has(canonical)) refuse(m.macInUse(canonical));
  return canonical;
}

function applyProps(s: LdmState, d: DomainConfig, p: DomainProps): void {
  if (p.failurePolicy !== undefined) {
    if (!FAILURE_POLICIES.includes(p.failurePolicy as FailurePolicy)) refuse(m.badValue('failure-policy', p.failurePolicy, FAILURE_POLICIES));
    d.failurePolicy = p.failurePolicy as FailurePolicy;
  }
  if (p.cpuArch !== undefined) {
    if (!CPU_ARCHS.includes(p.cpuArch as CpuArch)) refuse(m.badValue('cpu-arch', p.cpuArch, CPU_ARCHS));
    d.cpuArch = p.cpuArch as CpuArch;
  }
  if (p.master !== undefined) {
    const masters = p.master.split(',').map((x) => x.trim()).filter(Boolean);
    for (const name of masters) {
      if (name === d.name) refuse(m.selfMaster(name));
      if (!s.domains.some((o) => o.name === name)) refuse(m.noSuchDomain(name));
    }
    if (masters.length > 4) refuse(m.tooManyMasters());
    d.master = masters;
  }
  if (p.hostid !== undefined) {
    if (!/^(0x)?[0-9a-f]{1,8}$/i.test(p.hostid)) refuse(m.badValue('hostid', p.hostid, ['a 32-bit hexadecimal number']));
    d.hostid = p.hostid.toLowerCase().startsWith('0x') ? p.hostid.toLowerCase() : `0x${p.hostid.toLowerCase()}`;
  }
  if (p.mac !== undefined && p.mac !== d.mac) d.mac = checkMac(s, p.mac);
  if (p.perfCounters !== undefined) {
    const ok = p.perfCounters.split(',').every((x) => ['global', 'htstrand', 'strand', ''].includes(x.trim()));
    if (!ok) refuse(m.badValue('perf-counters', p.perfCounters, ['global', 'htstrand', 'strand']));
    d.perfCounters = p.perfCounters;
  }
}

function applyConstraints(s: LdmState, d: DomainConfig, c: DomainConstraints, machine: MachineSpec): void {
  if (c.wholeCores) {
    d.wholeCores = c.wholeCores;
    d.vcpus = c.wholeCores * machine.cpu.threadsPerCore;
  } else if (c.vcpus !== undefined) d.vcpus = c.vcpus;
  if (c.memory !== undefined) d.memory = roundMemory(c.memory);
  if (c.mau !== undefined) d.mau = c.mau;
  for (const io of c.io ?? []) {
    if (!machine.io.some((x) => x.name === io)) refuse(m.noSuchIo(io));
    const owner = s.domains.find((o) => o.io.includes(io));
    if (owner) refuse(m.ioInUse(io, owner.name));
    d.io.push(io);
  }
  for (const v of c.vdisks ?? []) {
    if (d.vdisks.some((x) => x.name === v.name)) refuse(m.deviceExists('vdisk', v.name, d.name));
    volumeOf(s, v.volume, v.service);
    d.vdisks.push({ ...stripUndefined(v), id: d.nextDeviceId++ });
  }
  for (const n of c.vnets ?? []) {
    if (d.vnets.some((x) => x.name === n.name)) refuse(m.deviceExists('vnet', n.name, d.name));
    if (!s.vsw.some((w) => w.name === n.service)) refuse(m.noSuchVsw(n.service));
    const mac = n.mac ? checkMac(s, n.mac) : nextMac(s);
    d.vnets.push({ ...stripUndefined(n), mac, id: d.nextDeviceId++ });
  }
  for (const [k, v] of c.variables ?? []) {
    const at = d.variables.findIndex(([x]) => x === k);
    if (at >= 0) d.variables[at] = [k, v];
    else d.variables.push([k, v]);
  }
  if (c.console) {
    if (c.console.service && !s.vcc.some((v) => v.name === c.console!.service)) refuse(m.noSuchVcc(c.console.service));
    Object.assign(d.console, stripUndefined(c.console));
  }
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
