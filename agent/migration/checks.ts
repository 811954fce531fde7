/**
 * Phase 1 of a migration: what the source sends (buildOffer) and the checks the
 * target runs against its own machine and model (checkOffer). Pure: no sockets, no
 * files, no clock; both sides hand in their model, so a test can run a migration's
 * first phase between two in-process models.
 *
 * The source refuses at once what needs no target (in this order): the domain does
 * not exist; it is the control domain; it has physical I/O; its guest is at the
 * OpenBoot `ok` prompt or in the kernel debugger; its OS is too old for a live
 * migration. The target then runs every check below, in this order, and answers
 * with the first failure (one reason line; the caller adds the summary line,
 * failureLines()) or with the plan of what to reserve. The target repeats the
 * source's checks on what the offer says: the offer may come from another agent.
 *
 * | check         | states                  | refuses when                                                          |
 * |---------------|-------------------------|-----------------------------------------------------------------------|
 * | software      | all                     | migration protocol, manager versions or firmware not compatible       |
 * | name          | all                     | the name on the target is invalid or taken (rename exists for this)   |
 * | limit         | all                     | the target holds its most domains already (model/limits.ts)           |
 * | identity      | all                     | the domain's UUID, host ID or MAC address is in use on the target     |
 * | perf-counters | all                     | it has the global performance counters and a target domain has them  |
 * | cpu-type      | active                  | CPU type or frequency differ, unless cpu-arch generic, migration-class1 on both, or -f |
 * | cpu           | active, bound           | not enough free strands (active: free whole cores)                    |
 * | memory        | active, bound           | not enough free memory, or the same blocks (RA, size) cannot be placed |
 * | physical-io   | all                     | the domain has a bus, endpoint or virtual function                    |
 * | vdisk         | active, bound           | a volume@vds is missing (active: its options or mpgroup differ)       |
 * | vnet          | all                     | (active, bound) a vswitch is missing; (all) a vnet's MAC address is in use on the target |
 * | console       | active, bound           | no console concentrator with a free port                             |
 * | crypto        | active, bound           | never: the units the target has free on the domain's cores are taken |
 * | reconf        | all                     | a delayed reconfiguration is pending on either machine               |
 * | power         | active                  | the elastic power policy is in effect on either machine              |
 * | run-state     | active                  | the guest is at the OpenBoot `ok` prompt or in the kernel debugger   |
 * | os            | active                  | the guest's OS is older than Solaris 10 9/10 (cold migration only)    |
 *
 * The order is migration.md's "Checks (phase 1)", with four checks it does not
 * list (name, limit, identity, perf-counters) put right after the software check:
 * they decide whether the target's model can hold the domain at all, in any state
 * (model/migrations.ts refuses the same when it reserves), so a dry run reports them.
 * For the same reason MAC addresses are checked in every state, though an inactive
 * domain otherwise skips the virtual I/O checks. Delayed reconfiguration counts in
 * every state because the model refuses to create a domain while the primary waits
 * for its reboot; the elastic policy is about running guests, so only live migrations.
 *
 * Our decisions where the guides are silent: manager versions must both be 1.1 or
 * later (the first with migration) and at most one major version apart; firmware
 * 7.0 or later (the UltraSPARC T2 generation) on both machines; migration-class1
 * needs a SPARC T4, T5, M5 or later (S7, M7, M8 ...) on both machines; memory
 * "congruency" means each of the source's blocks keeps its real address and size
 * and goes whole into one free range of the target (physical addresses may differ);
 * a live migration gets whole cores, enough for its virtual CPUs, and binds as many
 * strands of them as it had; a migrated guest keeps its identity (UUID, host ID,
 * MAC addresses), so each must be unused on the target.
 */
import type { Guest } from '../hypervisor/hypervisor.ts';
import { liveMigrationSupported } from '../hypervisor/variables.ts';
import { migrationMessages as msg } from '../messages.ts';
import { AllocationError, allocateMau, allocateStrands, freeCores, freeMemory, freeStrands, roundMemory } from '../model/allocate.ts';
import { vfMacs } from '../model/iov.ts';
import type { Ldm } from '../model/ldm.ts';
import type { MachineSpec } from '../model/machine.ts';
import { formatSize } from '../model/sizes.ts';
import type { Bindings, DomainConfig, DomainState, LdmState, MemoryBlock } from '../model/types.ts';
import { MIGRATION_PROTOCOL, type GuestSummary, type MachineSummary, type MigrationOffer, type VdiskBackend } from './offer.ts';

/** What the checks read of a model: its machine and state (an Ldm, or a test's stand-in). */
export type ModelView = Pick<Ldm, 'machine' | 'snapshot' | 'domain'>;

/** What the source reads of a running guest (the hypervisor's Guest has all of it). */
export type GuestView = Pick<Guest, 'state' | 'runState' | 'os' | 'pages' | 'touchedPages'>;

/** Where the source finds a domain's guest: the Hypervisor, or a test's stand-in. */
export interface GuestSource {
  guest(name: string): GuestView | undefined;
}

export type CheckName =
  | 'domain'
  | 'primary'
  | 'guest'
  | 'offer'
  | 'software'
  | 'name'
  | 'limit'
  | 'identity'
  | 'perf-counters'
  | 'cpu-type'
  | 'cpu'
  | 'memory'
  | 'physical-io'
  | 'vdisk'
  | 'vnet'
  | 'console'
  | 'crypto'
  | 'reconf'
  | 'power'
  | 'run-state'
  | 'os';

/** The first check that failed, and its one reason line. */
export interface CheckFailure {
  ok: false;
  check: CheckName;
  reason: string;
}

/**
 * What the target reserves for the domain it receives: plain data, shaped like the
 * model's Bindings (planBindings() gives them). Empty for an inactive domain, which
 * holds nothing.
 */
export interface MigrationPlan {
  /** The domain's name on the target. */
  name: string;
  /** The state it arrives in (migration.md: bound stays bound, inactive stays inactive; active resumes). */
  state: DomainState;
  /** Strand ids on the target (live migration: strands of whole cores). */
  strands: number[];
  /** The source's blocks, same real addresses and sizes, at the target's physical addresses. */
  memory: MemoryBlock[];
  /** Crypto units on the target (by unit id), at most as many as the domain has. */
  mau: number[];
  /** Crypto units the domain has on the source that the target could not give (not a failure). */
  mauShortfall: number;
  consolePort?: number;
  consoleService?: string;
}

export type CheckResult = { ok: true; plan: MigrationPlan } | CheckFailure;
export type OfferResult = { ok: true; offer: MigrationOffer } | CheckFailure;

/** Oldest firmware (major version) that migrates: our decision, see the top of this file. */
export const MIN_FIRMWARE_MAJOR = 7;
/** Our copy of the model's domain-name rule (ldm.ts keeps its own private): a dry run catches a bad rename. */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.+-]{0,63}$/;
/** Nodes the exact memory placement may visit before it gives up (8 blocks at most: it never needs many). */
const PLACEMENT_BUDGET = 20_000;

const hex = (n: number) => `0x${n.toString(16)}`;
const fail = (check: CheckName, reason: string): CheckFailure => ({ ok: false, check, reason });

/** The reason line and the summary line, as the client prints them. */
export function failureLines(domain: string, failure: CheckFailure, dryRun: boolean): [string, string] {
  return [failure.reason, dryRun ? msg.wouldFail(domain) : msg.failed(domain)];
}

/** The plan as the model's Bindings (undefined for an inactive domain). */
export function planBindings(plan: MigrationPlan): Bindings | undefined {
  if (plan.state === 'inactive') return undefined;
  const b: Bindings = { strands: [...plan.strands], memory: plan.memory.map((x) => ({ ...x })), mau: [...plan.mau] };
  if (plan.consolePort !== undefined) b.consolePort = plan.consolePort;
  if (plan.consoleService !== undefined) b.consoleService = plan.consoleService;
  return b;
}

// ── compatibility rules ──────────────────────────────────────────────────

function version(text: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Both 1.1 or later, at most one major version apart (our decision). */
export function managerVersionsCompatible(a: string, b: string): boolean {
  const va = version(a);
  const vb = version(b);
  const migrates = (v: [number, number]) => v[0] > 1 || (v[0] === 1 && v[1] >= 1);
  return va !== undefined && vb !== undefined && migrates(va) && migrates(vb) && Math.abs(va[0] - vb[0]) <= 1;
}

export function firmwareSupportsMigration(firmware: string): boolean {
  const m = /^(\d+)\./.exec(firmware.trim());
  return m !== null && Number(m[1]) >= MIN_FIRMWARE_MAJOR;
}

/** Whether a CPU type (the machine file's `cpu.type`) has migration class 1: SPARC T4, M5, S7 and later. */
export function supportsMigrationClass1(cpuType: string): boolean {
  const m = /^SPARC-([TMS])(\d+)/i.exec(cpuType.trim());
  if (!m) return false;
  const first: Record<string, number> = { T: 4, M: 5, S: 7 };
  return Number(m[2]) >= first[m[1]!.toUpperCase()]!;
}

// ── the source ───────────────────────────────────────────────────────────

/** The machine as the offer describes it. */
export function machineSummary(ldm: ModelView): MachineSummary {
  const m = ldm.machine;
  return {
    hostname: m.hostname,
    protocol: MIGRATION_PROTOCOL,
    managerVersion: m.managerVersion,
    firmware: m.firmware,
    platform: m.platform,
    cpu: { type: m.cpu.type, frequencyMHz: m.cpu.frequencyMHz, threadsPerCore: m.cpu.threadsPerCore },
    delayedReconf: ldm.snapshot.domains.some((d) => d.delayedReconf !== undefined),
    powerPolicy: m.powerPolicy,
  };
}

function physicalIoReason(d: DomainConfig): string | undefined {
  const device = d.io[0] ?? d.delayedReconf?.io?.[0];
  return device === undefined ? undefined : msg.physicalIo(d.name, device);
}

function runStateReason(name: string, guest: GuestSummary): string | undefined {
  if (guest.runState === 'openboot') return msg.runState(name, 'OpenBoot Running');
  if (guest.runState === 'kmdb') return msg.runState(name, 'Solaris debugging');
  return undefined;
}

function osReason(name: string, guest: GuestSummary): string | undefined {
  return liveMigrationSupported(guest.os) ? undefined : msg.osTooOld(name, guest.os);
}

/**
 * The offer for migrating `domainName` to the target as `targetName` (its own name
 * when undefined), or the first of the source's own checks that fails.
 */
export function buildOffer(
  ldm: ModelView,
  guests: GuestSource,
  domainName: string,
  targetName: string | undefined,
  options: { dryRun: boolean; force: boolean },
): OfferResult {
  const d = ldm.domain(domainName);
  if (!d) return fail('domain', msg.noSuchDomain(domainName));
  if (domainName === 'primary') return fail('primary', msg.controlDomain(domainName));
  const io = physicalIoReason(d);
  if (io) return fail('physical-io', io);
  let guest: GuestSummary | undefined;
  if (d.state === 'active') {
    const g = guests.guest(domainName);
    if (!g || g.state === 'destroyed' || g.state === 'created' || g.runState === null || g.os === null) return fail('guest', msg.noGuest(domainName));
    guest = { runState: g.runState, os: g.os, pages: g.pages, touchedPages: g.touchedPages };
    const reason = runStateReason(domainName, guest);
    if (reason) return fail('run-state', reason);
    const old = osReason(domainName, guest);
    if (old) return fail('os', old);
  }
  // The source's own bookkeeping of this migration (model/migrations.ts) does not travel.
  const domain = structuredClone(d) as DomainConfig & { migration?: unknown };
  delete domain.migration;
  const offer: MigrationOffer = {
    machine: machineSummary(ldm),
    domain,
    targetName: targetName ?? domainName,
    dryRun: options.dryRun,
    force: options.force,
    vdiskBackends: backendsOf(ldm.snapshot, d),
  };
  if (guest) offer.guest = guest;
  return { ok: true, offer };
}

/** The domain's volumes as this machine's disk servers have them, each once. */
function backendsOf(s: Readonly<LdmState>, d: DomainConfig): VdiskBackend[] {
  const out: VdiskBackend[] = [];
  for (const disk of d.vdisks) {
    if (out.some((b) => b.volume === disk.volume && b.service === disk.service)) continue;
    const v = s.vds.find((x) => x.name === disk.service)?.volumes.find((x) => x.name === disk.volume);
    if (!v) continue;
    const b: VdiskBackend = { volume: v.name, service: disk.service, options: [...v.options] };
    if (v.mpgroup !== undefined) b.mpgroup = v.mpgroup;
    out.push(b);
  }
  return out;
}

// ── the target ───────────────────────────────────────────────────────────

/** What every check sees; the resource checks fill in the plan. */
interface Context {
  machine: MachineSpec;
  state: Readonly<LdmState>;
  offer: MigrationOffer;
  d: DomainConfig;
  plan: MigrationPlan;
}

type Check = { name: CheckName; states: readonly DomainState[]; run: (c: Context) => string | undefined };

const ALL: readonly DomainState[] = ['active', 'bound', 'inactive'];
const HOLDING: readonly DomainState[] = ['active', 'bound'];
const LIVE: readonly DomainState[] = ['active'];

/** The target's checks, in order (the table at the top of this file). */
const CHECKS: readonly Check[] = [
  { name: 'software', states: ALL, run: software },
  { name: 'name', states: ALL, run: nameFree },
  { name: 'limit', states: ALL, run: (c) => (c.state.domains.length + 1 > c.machine.maxDomains ? msg.tooManyDomains(c.machine.hostname, c.machine.maxDomains) : undefined) },
  { name: 'identity', states: ALL, run: identity },
  { name: 'perf-counters', states: ALL, run: perfCounters },
  { name: 'cpu-type', states: LIVE, run: cpuType },
  { name: 'cpu', states: HOLDING, run: cpus },
  { name: 'memory', states: HOLDING, run: memory },
  { name: 'physical-io', states: ALL, run: (c) => physicalIoReason(c.d) },
  { name: 'vdisk', states: HOLDING, run: vdisks },
  { name: 'vnet', states: ALL, run: vnets },
  { name: 'console', states: HOLDING, run: consolePort },
  { name: 'crypto', states: HOLDING, run: crypto },
  { name: 'reconf', states: ALL, run: reconf },
  { name: 'power', states: LIVE, run: power },
  { name: 'run-state', states: LIVE, run: (c) => runStateReason(c.d.name, c.offer.guest!) },
  { name: 'os', states: LIVE, run: (c) => osReason(c.d.name, c.offer.guest!) },
];

/**
 * Run the target's checks on `offer` against this machine and model: the plan of
 * what to reserve, or the first failure. Changes nothing; a later reserve step must
 * still find the plan's resources free (the model may have changed since).
 */
export function checkOffer(ldm: ModelView, offer: MigrationOffer): CheckResult {
  const d = offer.domain;
  const plan: MigrationPlan = { name: offer.targetName, state: d.state, strands: [], memory: [], mau: [], mauShortfall: 0 };
  if (d.state !== 'inactive' && !d.bindings) return fail('offer', msg.incompleteOffer(d.name, 'bindings'));
  if (d.state === 'active' && !offer.guest) return fail('offer', msg.incompleteOffer(d.name, 'guest state'));
  const c: Context = { machine: ldm.machine, state: ldm.snapshot, offer, d, plan };
  for (const check of CHECKS) {
    if (!check.states.includes(d.state)) continue;
    const reason = check.run(c);
    if (reason !== undefined) return fail(check.name, reason);
  }
  return { ok: true, plan };
}

function software(c: Context): string | undefined {
  const src = c.offer.machine;
  const m = c.machine;
  if (src.protocol !== MIGRATION_PROTOCOL) return msg.protocol(src.hostname, src.protocol, m.hostname, MIGRATION_PROTOCOL);
  if (!managerVersionsCompatible(src.managerVersion, m.managerVersion)) return msg.managerVersion(src.hostname, src.managerVersion, m.hostname, m.managerVersion);
  const minimum = `${MIN_FIRMWARE_MAJOR}.0`;
  if (!firmwareSupportsMigration(src.firmware)) return msg.firmware(src.hostname, 'source', src.firmware, minimum);
  if (!firmwareSupportsMigration(m.firmware)) return msg.firmware(m.hostname, 'target', m.firmware, minimum);
  return undefined;
}

function nameFree(c: Context): string | undefined {
  const name = c.offer.targetName;
  if (!NAME_RE.test(name)) return msg.invalidName(name);
  if (c.state.domains.some((x) => x.name === name)) return msg.nameTaken(name, c.machine.hostname);
  return undefined;
}

function cpuType(c: Context): string | undefined {
  const src = c.offer.machine;
  const m = c.machine;
  if (c.d.cpuArch === 'migration-class1') {
    // Class 1 is a promise both CPUs must keep; -f does not make a CPU support it.
    if (!supportsMigrationClass1(src.cpu.type)) return msg.cpuClass(c.d.name, src.hostname, src.cpu.type);
    if (!supportsMigrationClass1(m.cpu.type)) return msg.cpuClass(c.d.name, m.hostname, m.cpu.type);
    return undefined;
  }
  if (c.d.cpuArch === 'generic' || c.offer.force) return undefined;
  if (src.cpu.type === m.cpu.type && src.cpu.frequencyMHz === m.cpu.frequencyMHz) return undefined;
  const show = (cpu: { type: string; frequencyMHz: number }) => `${cpu.type} at ${cpu.frequencyMHz} MHz`;
  return msg.cpuType(c.d.name, src.hostname, show(src.cpu), m.hostname, show(m.cpu));
}

function cpus(c: Context): string | undefined {
  const vcpus = c.d.bindings!.strands.length;
  const free = freeStrands(c.machine, c.state);
  const tpc = c.machine.cpu.threadsPerCore;
  // A live guest gets cores of its own; so does a domain that counts in whole cores
  // (their number is recomputed: the target's cores may have another strand count).
  if (c.d.state === 'active' || c.d.wholeCores > 0) {
    const wanted = Math.ceil(vcpus / tpc);
    const cores = freeCores(c.machine, free).sort((a, b) => a - b);
    if (cores.length < wanted) return msg.notEnoughCores(c.d.name, c.machine.hostname, vcpus, wanted, cores.length);
    c.plan.strands = cores.slice(0, wanted).flatMap((core) => Array.from({ length: tpc }, (_, i) => core * tpc + i)).slice(0, vcpus);
    return undefined;
  }
  try {
    c.plan.strands = allocateStrands(c.machine, free, vcpus, 0);
  } catch (err) {
    if (err instanceof AllocationError) return msg.notEnoughCpus(c.d.name, c.machine.hostname, vcpus, free.length);
    throw err;
  }
  return undefined;
}

function memory(c: Context): string | undefined {
  const blocks = c.d.bindings!.memory;
  const free = freeMemory(c.machine, c.state);
  const wanted = blocks.reduce((a, b) => a + roundMemory(b.size), 0);
  const total = free.reduce((a, r) => a + r.size, 0);
  if (total < wanted) return msg.notEnoughMemory(c.d.name, c.machine.hostname, formatSize(wanted), formatSize(total));
  const placed = placeBlocks(free, blocks);
  if (!placed.ok) return msg.memoryLayout(hex(placed.block.pa), hex(placed.block.ra), formatSize(placed.block.size));
  c.plan.memory = placed.blocks;
  return undefined;
}

export type Placement = { ok: true; blocks: MemoryBlock[] } | { ok: false; block: MemoryBlock };

/**
 * Place each of `blocks` (the source's: real address, physical address, size) whole
 * in one of the `free` ranges: the same real addresses and sizes, at physical
 * addresses of the target. Best fit, largest block first; when that fails, an exact
 * search (at most 8 blocks, bounded) before giving up. A failure names the source's
 * block that best fit could not place.
 */
export function placeBlocks(free: readonly { pa: number; size: number }[], blocks: readonly MemoryBlock[]): Placement {
  const order = [...blocks].sort((a, b) => b.size - a.size || a.ra - b.ra);
  const fresh = () => free.map((r) => ({ pa: r.pa, size: r.size })).sort((a, b) => a.pa - b.pa);
  const at: number[] = [];
  const ranges = fresh();
  let failed: MemoryBlock | undefined;
  for (const block of order) {
    const need = roundMemory(block.size);
    const best = ranges.filter((r) => r.size >= need).sort((a, b) => a.size - b.size || a.pa - b.pa)[0];
    if (!best) {
      failed = block;
      break;
    }
    at.push(best.pa);
    best.pa += need;
    best.size -= need;
  }
  if (failed === undefined) return { ok: true, blocks: result(order, at) };
  const exact = search(order, fresh());
  return exact ? { ok: true, blocks: result(order, exact) } : { ok: false, block: failed };
}

function result(order: readonly MemoryBlock[], at: readonly number[]): MemoryBlock[] {
  return order.map((b, i) => ({ ra: b.ra, pa: at[i]!, size: b.size })).sort((a, b) => a.ra - b.ra);
}

/** Depth-first assignment of blocks to ranges; ranges of equal room are tried once per level. */
function search(order: readonly MemoryBlock[], ranges: { pa: number; size: number }[]): number[] | undefined {
  const at: number[] = [];
  let budget = PLACEMENT_BUDGET;
  const go = (i: number): boolean => {
    if (i === order.length) return true;
    const need = roundMemory(order[i]!.size);
    const tried = new Set<number>();
    for (const r of ranges) {
      if (r.size < need || tried.has(r.size)) continue;
      if (--budget < 0) return false;
      tried.add(r.size);
      at.push(r.pa);
      r.pa += need;
      r.size -= need;
      const done = go(i + 1);
      r.pa -= need;
      r.size += need;
      if (done) return true;
      at.pop();
    }
    return false;
  };
  return go(0) ? at : undefined;
}

function vdisks(c: Context): string | undefined {
  const host = c.machine.hostname;
  for (const disk of c.d.vdisks) {
    const ours = c.state.vds.find((v) => v.name === disk.service)?.volumes.find((v) => v.name === disk.volume);
    if (!ours) return msg.noVolume(disk.volume, disk.service, disk.name, c.d.name, host);
    if (c.d.state !== 'active') continue;
    const theirs = c.offer.vdiskBackends?.find((b) => b.volume === disk.volume && b.service === disk.service);
    if (!theirs) continue;
    const same = (a: readonly string[], b: readonly string[]) => [...a].sort().join(',') === [...b].sort().join(',');
    if (!same(theirs.options, ours.options)) return msg.volumeOptions(disk.volume, disk.service, theirs.options.join(','), host, ours.options.join(','));
    if ((theirs.mpgroup ?? '') !== (ours.mpgroup ?? '')) return msg.volumeMpgroup(disk.volume, disk.service, theirs.mpgroup ?? '', host, ours.mpgroup ?? '');
  }
  return undefined;
}

const canonical = (mac: string) =>
  mac
    .toLowerCase()
    .split(':')
    .map((b) => b.padStart(2, '0'))
    .join(':');

/** Every MAC address the target's model holds (domains, vnets, vswitches, virtual functions), as ldm.ts counts them. */
function macsInUse(s: Readonly<LdmState>): Set<string> {
  const all = [...s.domains.map((d) => d.mac), ...s.domains.flatMap((d) => d.vnets.map((n) => n.mac)), ...s.vsw.map((w) => w.mac), ...vfMacs(s)];
  return new Set(all.filter((m) => m !== '').map(canonical));
}

/** A vswitch of the same name for each vnet (not for an inactive domain), and each vnet's MAC address unused here. */
function vnets(c: Context): string | undefined {
  const host = c.machine.hostname;
  const used = macsInUse(c.state);
  for (const n of c.d.vnets) {
    if (c.d.state !== 'inactive' && !c.state.vsw.some((w) => w.name === n.service)) return msg.noVsw(n.service, n.name, c.d.name, host);
    if (used.has(canonical(n.mac))) return msg.vnetMacInUse(canonical(n.mac), n.name, c.d.name, host);
  }
  return undefined;
}

const hostidValue = (h: string) => Number.parseInt(h, 16);

/** The guest keeps its UUID, host ID and MAC address: none may be another domain's on the target. */
function identity(c: Context): string | undefined {
  const host = c.machine.hostname;
  const uuid = c.state.domains.find((x) => x.uuid.toLowerCase() === c.d.uuid.toLowerCase());
  if (uuid) return msg.uuidInUse(c.d.uuid, c.d.name, uuid.name, host);
  const hostid = c.state.domains.find((x) => hostidValue(x.hostid) === hostidValue(c.d.hostid));
  if (hostid) return msg.hostidInUse(c.d.hostid, c.d.name, hostid.name, host);
  if (c.d.mac !== '' && macsInUse(c.state).has(canonical(c.d.mac))) return msg.domainMacInUse(canonical(c.d.mac), c.d.name, host);
  return undefined;
}

/** One domain at a time may have the global performance counters (the model's rule). */
function perfCounters(c: Context): string | undefined {
  const global = (x: DomainConfig) => x.perfCounters.split(',').includes('global');
  if (!global(c.d)) return undefined;
  const other = c.state.domains.find(global);
  return other ? msg.globalCounters(c.d.name, other.name, c.machine.hostname) : undefined;
}

/** A port on the concentrator of the same name first (the source's port when free there), else on any other. */
function consolePort(c: Context): string | undefined {
  const b = c.d.bindings!;
  const service = b.consoleService ?? c.d.console.service;
  const vccs = [...c.state.vcc].sort((x, y) => Number(y.name === service) - Number(x.name === service));
  for (const vcc of vccs) {
    const used = new Set(c.state.domains.filter((x) => x.bindings?.consoleService === vcc.name).map((x) => x.bindings!.consolePort));
    const keep = vcc.name === service ? (b.consolePort ?? c.d.console.port) : undefined;
    let port = keep !== undefined && keep >= vcc.minPort && keep <= vcc.maxPort && !used.has(keep) ? keep : undefined;
    for (let p = vcc.minPort; port === undefined && p <= vcc.maxPort; p++) if (!used.has(p)) port = p;
    if (port !== undefined) {
      c.plan.consolePort = port;
      c.plan.consoleService = vcc.name;
      return undefined;
    }
  }
  return msg.noConsole(c.d.name, c.machine.hostname);
}

/** As many of the domain's crypto units as the target has free on the planned cores; fewer is no failure. */
function crypto(c: Context): undefined {
  const count = c.d.bindings!.mau.length;
  const take = (n: number) => allocateMau(c.machine, c.state, c.plan.name, c.plan.strands, n);
  try {
    c.plan.mau = take(count);
  } catch (err) {
    if (!(err instanceof AllocationError && err.failure.kind === 'mau')) throw err;
    c.plan.mau = take(err.failure.free);
  }
  c.plan.mauShortfall = count - c.plan.mau.length;
  return undefined;
}

function reconf(c: Context): string | undefined {
  if (c.offer.machine.delayedReconf) return msg.delayedReconf(c.offer.machine.hostname, 'source');
  if (c.state.domains.some((d) => d.delayedReconf !== undefined)) return msg.delayedReconf(c.machine.hostname, 'target');
  return undefined;
}

function power(c: Context): string | undefined {
  if (c.offer.machine.powerPolicy === 'elastic') return msg.elastic(c.offer.machine.hostname, 'source');
  if (c.machine.powerPolicy === 'elastic') return msg.elastic(c.machine.hostname, 'target');
  return undefined;
}
