/**
 * Migrations as the domain model sees them: a record on each domain taking
 * part (types.ts MigrationRecord), saved with the domain database, and the
 * changes that make, advance and end those records. The network side
 * (agent/migration/) calls these; it never touches the state itself.
 *
 *   source:  markSource ──► setProgress* ──► markHandoff ──► completeSource   (domain removed here)
 *                 │                  │               └──► markError ──► completeSource | clearSource
 *                 │                  └────► clearSource      (cancel/failure before the resume: runs on)
 *   target:  reserveTarget ──► setProgress* ──► completeTarget  (active/bound/inactive)
 *                                       └────► abortTarget     (domain removed)
 *
 * Every change goes through the model's queue (Ldm.change): made on a copy,
 * checked by the loader's rules, saved atomically, then swapped in. The one
 * exception is progress within a phase: it moves at up to tens of updates a
 * second, so it is kept in memory (listings and events see it at once) and
 * saved with the next phase change. After a restart a migration is settled,
 * never resumed (settleAtStart), so a saved progress that lags costs nothing.
 *
 * While a domain has a record, every other change to it is refused
 * (refuseIfMigrating, hooked into the model's domain lookup), and bind and
 * stop of other domains are refused while a migration runs (migration.md).
 */
import type { Logger } from '../log.ts';
import { migrationModelMessages as mm, objectMessages, refusalMessages as m } from '../messages.ts';
import { coreOf, freeMemory, freeStrands, MAX_MEMORY_BLOCKS, MEMORY_UNIT } from './allocate.ts';
import { vfMacs } from './iov.ts';
import type { MachineSpec } from './machine.ts';
import { hostidValue } from './properties.ts';
import { refuse } from './refusal.ts';
import type { DomainConfig, DomainState, LdmState, MemoryBlock, MigrationRecord } from './types.ts';

const CONTROL_DOMAIN = 'primary';
/** The model's rule for domain names (ldm.ts NAME_RE; not imported: ldm.ts imports this module). */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.+-]{0,63}$/;

export type MigrationStatus = 'ongoing' | 'failed' | 'done';

/** A migration progress event (protocol.md section 6); `source` is the reporting host (this machine). */
export interface MigrationProgressEvent {
  class: 'progress';
  domain: string;
  /** Percent, 0 to 100. */
  progress: number;
  status: MigrationStatus;
  source: string;
}

/** What the changes here announce: progress, and the domain event `migrate-domain` (or `domain-reset`). */
export type MigrationModelEvent = MigrationProgressEvent | { class: 'domain'; action: string; domain: string };

/** What the model hands this module: its state, its change queue, its events and its guests. */
export interface MigrationHost {
  readonly machine: MachineSpec;
  current(): Readonly<LdmState>;
  /** Ldm.change: `fn` runs on a draft; `announce` queues an event for after the save; `after` work for after the swap. */
  change<T>(fn: (s: LdmState, announce: (ev: MigrationModelEvent) => void, after: (work: () => void | Promise<void>) => void) => T): Promise<T>;
  /** Announce at once (progress within a phase: nothing is saved). */
  emit(ev: MigrationModelEvent): void;
  /** A guest exists for this domain (running or suspended). */
  guestExists(name: string): boolean;
  startGuest(d: DomainConfig): void | Promise<void>;
}

/**
 * The exact bindings a received domain gets (what agent/migration/checks.ts
 * found free): strands, memory blocks with the source's real addresses and
 * the physical addresses chosen here, crypto units, console port.
 */
export interface ReceivePlan {
  strands: number[];
  memory: MemoryBlock[];
  mau: number[];
  consolePort?: number;
  consoleService?: string;
}

export interface TargetReservation {
  /** The domain as the source described it (the offer's `domain`). */
  domain: DomainConfig;
  /** Its name here (rename on migration). */
  name: string;
  /**
   * The state it had on the source (agent/migration/checks.ts MigrationPlan.state):
   * `active` (live migration) and `bound` are received bound, with the plan's
   * resources reserved; `inactive` holds nothing.
   */
  state: DomainState;
  /** Required unless `state` is `inactive`; a MigrationPlan fits as it is. */
  plan?: ReceivePlan;
  peer: string;
  id: string;
}

/** A record with its live progress: what listings show. */
export interface MigrationView {
  role: 'source' | 'target';
  peer: string;
  id: string;
  phase: string;
  progress: number;
  error: boolean;
  /** Source: the agents log in with certificates (types.ts MigrationRecord). */
  certificate: boolean;
  startedAt: string;
}

// ── refusals the model applies to other changes ─────────────────────────────

/** Any change to a migrating domain (source, target, or source in the error state) is refused. */
export function refuseIfMigrating(d: DomainConfig): void {
  const r = d.migration;
  if (r) refuse(mm.beingMigrated(d.name, r.role, r.peer, r.error === true));
}

/**
 * bind and stop of other domains wait while a migration runs (migration.md
 * "While it runs"). A source in the error state runs no migration: it may wait
 * for its target a long time, and holds its resources meanwhile either way.
 */
export function refuseWhileMigrationRuns(s: Readonly<LdmState>, name: string, verb: 'bound' | 'stopped'): void {
  const running = s.domains.find((d) => d.name !== name && d.migration && !d.migration.error);
  if (running) refuse(mm.otherMigrating(name, verb, running.name));
}

/** Column 6 of the flags: `s` source, `t` target, `e` source in the error state. */
export function migrationFlag(d: DomainConfig): string {
  const r = d.migration;
  if (!r) return '-';
  if (r.error) return 'e';
  return r.role === 'source' ? 's' : 't';
}

// ── the changes ─────────────────────────────────────────────────────────────

export class Migrations {
  /** Progress within the current phase, not saved yet (see the top of this file). */
  private readonly live = new Map<string, { phase: string; progress: number }>();

  constructor(private readonly host: MigrationHost) {}

  /** The domain's migration, with its live progress; undefined when it has none. */
  view(name: string): MigrationView | undefined {
    const r = this.host.current().domains.find((d) => d.name === name)?.migration;
    if (!r) return undefined;
    const l = this.live.get(name);
    return {
      role: r.role,
      peer: r.peer,
      id: r.id,
      phase: l?.phase ?? r.phase,
      progress: Math.max(r.progress, l?.progress ?? 0),
      error: r.error === true,
      certificate: r.certificate === true,
      startedAt: r.startedAt,
    };
  }

  /** Source, phase 2: the domain gets flag `s`; from now on nothing else may change it. */
  markSource(name: string, peer: string, id: string, certificate = false): Promise<void> {
    return this.host.change((s, announce) => {
      const d = findDomain(s, name);
      if (name === CONTROL_DOMAIN) refuse(mm.controlDomain());
      if (d.migration) refuse(mm.alreadyMigrating(name, d.migration.peer));
      refuseIfReconfPending(s);
      const served = [...s.vds, ...s.vsw, ...s.vcc].filter((x) => x.domain === name).map((x) => x.name);
      if (served.length > 0) refuse(mm.providesServices(name, served));
      d.migration = record('source', peer, id);
      if (certificate) d.migration.certificate = true;
      announce(this.progressEvent(name, 0, 'ongoing'));
    });
  }

  /**
   * Progress of the domain's migration (either side): `progress` in percent,
   * clamped to 0-100 and never below what was reported before. Saved only
   * when `phase` changes; otherwise kept in memory. An event is announced
   * each time the whole percentage grows, so at most 101 per migration.
   * A source in the error state keeps the progress it had.
   */
  async setProgress(name: string, phase: string, progress: number): Promise<void> {
    const v = this.view(name) ?? refuse(objectMessages.noMigration(name));
    if (v.error) return;
    const next = Math.max(v.progress, Math.min(100, Math.max(0, Math.floor(Number.isFinite(progress) ? progress : 0))));
    const phaseChanged = phase !== v.phase;
    if (!phaseChanged && next === v.progress) return;
    this.live.set(name, { phase, progress: next });
    if (next > v.progress) this.host.emit(this.progressEvent(name, next, 'ongoing'));
    if (!phaseChanged) return;
    await this.host.change((s) => {
      // Ended meanwhile (cleared, completed): nothing left to save.
      const r = s.domains.find((d) => d.name === name)?.migration;
      if (!r) return;
      r.phase = phase;
      r.progress = Math.max(r.progress, this.live.get(name)?.progress ?? next);
    });
  }

  /**
   * Source, before the target is told to resume: the phase `handoff`, saved. An agent
   * that stops from here on may have handed the domain over, so its restart asks the
   * target before the guest runs here again (settleAtStart), never guesses.
   */
  markHandoff(name: string): Promise<void> {
    // The live phase too: later progress in this phase saves nothing more (setProgress).
    const v = this.view(name);
    if (v) this.live.set(name, { phase: 'handoff', progress: v.progress });
    return this.host.change((s) => {
      const { r } = mine(s, name, 'source');
      r.phase = 'handoff';
      r.progress = Math.max(r.progress, this.live.get(name)?.progress ?? 0);
    });
  }

  /** Source: the handoff window was lost (no confirmation from the target): flag `e`, saved, until settled. */
  markError(name: string): Promise<void> {
    return this.host.change((s) => {
      const { r } = mine(s, name, 'source');
      r.error = true;
      r.progress = Math.max(r.progress, this.live.get(name)?.progress ?? 0);
    });
  }

  /**
   * Source, cancel or failure: the record goes, the domain runs on unchanged.
   * An active domain whose guest is gone (the agent restarted while the
   * domain was in the error state) gets its guest started again here.
   */
  clearSource(name: string): Promise<void> {
    return this.host.change((s, announce, after) => {
      const { d } = mine(s, name, 'source');
      const progress = this.view(name)?.progress ?? 0;
      delete d.migration;
      after(() => void this.live.delete(name));
      if (d.state === 'active' && !this.host.guestExists(name)) {
        after(() => this.host.startGuest(d));
        announce({ class: 'domain', action: 'domain-reset', domain: name });
      }
      announce(this.progressEvent(name, progress, 'failed'));
    });
  }

  /**
   * Source, success: the domain now lives on the target only. It is removed
   * here and its resources are free; the caller scrubs its guest. Other
   * domains stop naming it as their master.
   */
  completeSource(name: string): Promise<void> {
    return this.host.change((s, announce, after) => {
      mine(s, name, 'source');
      s.domains = s.domains.filter((d) => d.name !== name);
      for (const o of s.domains) o.master = o.master.filter((x) => x !== name);
      after(() => void this.live.delete(name));
      announce(this.progressEvent(name, 100, 'done'));
      announce({ class: 'domain', action: 'migrate-domain', domain: name });
    });
  }

  /**
   * Target, phase 2: the receiving domain, flag `t`, with exactly the planned
   * bindings (bound) or none (inactive). Everything is checked again against
   * this machine as it is now: a resource taken since the checks refuses it.
   */
  reserveTarget(res: TargetReservation): Promise<void> {
    return this.host.change((s, announce) => {
      const d = this.receivedDomain(s, res);
      if (d.state === 'bound') d.bindings = checkPlan(this.host.machine, s, d, res.plan ?? refuse(mm.planInvalid(res.name, 'no bindings given for a bound domain')));
      s.domains.push(d);
      announce(this.progressEvent(res.name, 0, 'ongoing'));
    });
  }

  /**
   * Target, success: the domain becomes an ordinary one. `active` for a live
   * migration (the caller has resumed its guest: the model starts nothing),
   * else the state it was received in.
   */
  completeTarget(name: string, finalState: DomainState): Promise<void> {
    return this.host.change((s, announce, after) => {
      const { d } = mine(s, name, 'target');
      const allowed = d.state === 'bound' ? ['active', 'bound'] : ['inactive'];
      if (!allowed.includes(finalState)) refuse(mm.badFinalState(name, d.state, finalState));
      d.state = finalState;
      delete d.migration;
      after(() => void this.live.delete(name));
      announce(this.progressEvent(name, 100, 'done'));
      announce({ class: 'domain', action: 'migrate-domain', domain: name });
    });
  }

  /** Target, cancel or failure: the received domain goes, its resources are free (the caller scrubs its guest). */
  abortTarget(name: string): Promise<void> {
    return this.host.change((s, announce, after) => {
      mine(s, name, 'target');
      const progress = this.view(name)?.progress ?? 0;
      s.domains = s.domains.filter((d) => d.name !== name);
      after(() => void this.live.delete(name));
      announce(this.progressEvent(name, progress, 'failed'));
    });
  }

  /**
   * At the agent's start, before guests start: a target record is a
   * half-received domain (removed); a source record before its handoff is a
   * migration cut short (cleared: the domain runs on); one in its handoff (the
   * target may have resumed the domain) enters the error state, and a source in
   * the error state stays: both are settled with the target. Each is logged.
   */
  async settleAtStart(log: Logger): Promise<void> {
    const found = this.host.current().domains.filter((d) => d.migration);
    for (const d of found) if (d.migration!.error) log.warn(mm.startSourceInError(d.name, d.migration!.peer, d.migration!.id));
    const settle = found.filter((d) => !d.migration!.error);
    if (settle.length === 0) return;
    const inHandoff = (r: MigrationRecord) => r.role === 'source' && r.phase === 'handoff';
    await this.host.change((s) => {
      for (const { name, migration: r } of settle) {
        if (r!.role === 'target') s.domains = s.domains.filter((d) => d.name !== name);
        else if (inHandoff(r!)) findDomain(s, name).migration!.error = true;
        else delete findDomain(s, name).migration;
      }
    });
    for (const { name, migration: r } of settle) {
      if (r!.role === 'target') log.warn(mm.startTargetRemoved(name, r!.peer, r!.id));
      else if (inHandoff(r!)) log.warn(mm.startSourceInHandoff(name, r!.peer, r!.id));
      else log.warn(mm.startSourceCleared(name, r!.peer, r!.id, r!.phase));
    }
  }

  private progressEvent(domain: string, progress: number, status: MigrationStatus): MigrationProgressEvent {
    return { class: 'progress', domain, progress, status, source: this.host.machine.hostname };
  }

  /** The domain a reservation creates, checked against this machine's names, identities and services. */
  private receivedDomain(s: LdmState, res: TargetReservation): DomainConfig {
    const { name } = res;
    if (!NAME_RE.test(name)) refuse(m.invalidName(name));
    if (s.domains.some((d) => d.name === name)) refuse(m.domainExists(name));
    refuseIfReconfPending(s);
    const max = this.host.machine.maxDomains;
    if (s.domains.length + 1 > max) refuse(m.tooManyDomains(max, s.domains.length + 1));
    const d = structuredClone(res.domain);
    d.name = name;
    delete d.delayedReconf;
    delete d.nextDeviceId;
    delete d.bindings;
    if (d.io.length > 0) refuse(mm.planInvalid(name, `physical I/O (${d.io.join(', ')}) cannot be migrated`));
    // The guest keeps its identity: the same uuid, host id and MAC addresses, none of them in use here.
    const uuidOwner = s.domains.find((o) => o.uuid === d.uuid);
    if (uuidOwner) refuse(m.uuidInUse(d.uuid, uuidOwner.name));
    const hostidOwner = s.domains.find((o) => hostidValue(o.hostid) === hostidValue(d.hostid));
    if (hostidOwner) refuse(m.hostidInUse(d.hostid, hostidOwner.name));
    const macs = new Set([...s.domains.flatMap((o) => [o.mac, ...o.vnets.map((n) => n.mac)]), ...s.vsw.map((w) => w.mac), ...vfMacs(s)]);
    for (const mac of [d.mac, ...d.vnets.map((n) => n.mac)]) if (macs.has(mac)) refuse(m.macInUse(mac));
    for (const v of d.vdisks) {
      if (!s.vds.some((x) => x.name === v.service && x.volumes.some((vol) => vol.name === v.volume))) refuse(m.noSuchVolume(v.volume, v.service));
    }
    for (const n of d.vnets) if (!s.vsw.some((w) => w.name === n.service)) refuse(m.noSuchVsw(n.service));
    if (d.perfCounters.split(',').includes('global')) {
      const other = s.domains.find((o) => o.perfCounters.split(',').includes('global'));
      if (other) refuse(m.globalCountersTaken(other.name));
    }
    // Masters and a console concentrator named on the source may not exist here: only what does is kept.
    d.master = d.master.filter((x) => s.domains.some((o) => o.name === x));
    // The plan binds a console port; a constraint naming a concentrator stays one only if the source had it.
    const service = res.plan?.consoleService;
    if (service !== undefined && d.console.service !== undefined) d.console.service = service;
    else if (d.console.service && !s.vcc.some((v) => v.name === d.console.service)) delete d.console.service;
    if (d.console.port !== undefined && d.console.port !== res.plan?.consolePort) delete d.console.port;
    // A live guest is received bound: it runs here only once completeTarget() makes it active.
    d.state = res.state === 'inactive' ? 'inactive' : 'bound';
    d.migration = record('target', res.peer, res.id);
    return d;
  }
}

// ── helpers on a draft ──────────────────────────────────────────────────────

function record(role: 'source' | 'target', peer: string, id: string): MigrationRecord {
  return { role, peer, id, phase: 'prepare', progress: 0, startedAt: new Date().toISOString() };
}

function findDomain(s: LdmState, name: string): DomainConfig {
  return s.domains.find((d) => d.name === name) ?? refuse(m.noSuchDomain(name));
}

/** The domain and its record in the given role, or a refusal. */
function mine(s: LdmState, name: string, role: 'source' | 'target'): { d: DomainConfig; r: MigrationRecord } {
  const d = findDomain(s, name);
  if (d.migration?.role !== role) refuse(mm.notMigrating(name, role));
  return { d, r: d.migration! };
}

function refuseIfReconfPending(s: LdmState): void {
  if (s.domains.find((d) => d.name === CONTROL_DOMAIN)?.delayedReconf) refuse(m.reconfPending());
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The plan's bindings, each resource checked free on this machine now; a taken one is refused by name. */
function checkPlan(machine: MachineSpec, s: LdmState, d: DomainConfig, plan: ReceivePlan): NonNullable<DomainConfig['bindings']> {
  const name = d.name;
  const bad = (detail: string): never => refuse(mm.planInvalid(name, detail));
  // Strands: as many as the domain's constraint, each free.
  if (new Set(plan.strands).size !== plan.strands.length) bad('a strand is named twice');
  if (plan.strands.length !== d.vcpus) bad(`${plan.strands.length} strands planned for ${d.vcpus} virtual CPUs`);
  const strands = new Set(freeStrands(machine, s));
  for (const x of plan.strands) if (!strands.has(x)) refuse(mm.resourceTaken(name, `strand ${x}`));
  // Memory: whole units, the domain's size, at most MAX_MEMORY_BLOCKS blocks, real and physical ranges apart, each physical range free.
  const blocks = [...plan.memory].sort((a, b) => a.ra - b.ra);
  if (blocks.length > MAX_MEMORY_BLOCKS) bad(`${blocks.length} memory blocks (at most ${MAX_MEMORY_BLOCKS})`);
  const total = blocks.reduce((a, b) => a + b.size, 0);
  if (total !== d.memory) bad(`${total} bytes of memory planned for ${d.memory}`);
  for (const b of blocks) if (b.size <= 0 || b.size % MEMORY_UNIT !== 0 || b.ra < 0) bad(`memory block RA ${hex(b.ra)} is not in whole units`);
  for (let i = 1; i < blocks.length; i++) if (blocks[i - 1]!.ra + blocks[i - 1]!.size > blocks[i]!.ra) bad(`memory blocks overlap at RA ${hex(blocks[i]!.ra)}`);
  const byPa = [...blocks].sort((a, b) => a.pa - b.pa);
  for (let i = 1; i < byPa.length; i++) if (byPa[i - 1]!.pa + byPa[i - 1]!.size > byPa[i]!.pa) bad(`memory blocks overlap at PA ${hex(byPa[i]!.pa)}`);
  const free = freeMemory(machine, s);
  for (const b of blocks) {
    // Free ranges start on a unit boundary of their bank: a block must too.
    if (!free.some((r) => b.pa >= r.pa && b.pa + b.size <= r.pa + r.size && (b.pa - r.pa) % MEMORY_UNIT === 0)) refuse(mm.resourceTaken(name, `the memory block with PA ${hex(b.pa)}, RA ${hex(b.ra)} and size ${b.size} bytes`));
  }
  // Crypto units: on the domain's cores and bound to nobody (fewer than asked is allowed: migration.md).
  const cores = new Set(plan.strands.map((x) => coreOf(machine, x)));
  const per = machine.cpu.cryptoUnitsPerCore;
  const usedMau = new Set(s.domains.flatMap((o) => o.bindings?.mau ?? []));
  if (new Set(plan.mau).size !== plan.mau.length) bad('a crypto unit is named twice');
  for (const u of plan.mau) {
    if (per === 0 || !cores.has(Math.floor(u / per))) bad(`crypto unit ${u} is not on a core of its strands`);
    if (usedMau.has(u)) refuse(mm.resourceTaken(name, `crypto unit ${u}`));
  }
  const bindings: NonNullable<DomainConfig['bindings']> = { strands: [...plan.strands], memory: blocks.map((b) => ({ ...b })), mau: [...plan.mau] };
  // Console: a port of an existing concentrator, in its range, used by nobody.
  if (plan.consolePort !== undefined) {
    const vcc = s.vcc.find((v) => v.name === plan.consoleService) ?? bad(`no console concentrator ${plan.consoleService ?? '(none named)'}`);
    const port = plan.consolePort;
    if (port < vcc.minPort || port > vcc.maxPort) bad(`console port ${port} is outside ${vcc.name}'s range ${vcc.minPort}-${vcc.maxPort}`);
    if (s.domains.some((o) => o.bindings?.consoleService === vcc.name && o.bindings.consolePort === port)) refuse(mm.resourceTaken(name, `console port ${port} of ${vcc.name}`));
    bindings.consolePort = port;
    bindings.consoleService = vcc.name;
  }
  return bindings;
}
