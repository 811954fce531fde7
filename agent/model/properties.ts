/**
 * A domain's own properties (the ldom_info resource): what add-domain and
 * set-domain accept, their defaults, and their checks. Every key the 3.x
 * guides and ldm(1M) list for a domain is kept here, listed by list-domain,
 * list-bindings and list-constraints, and read back by add-domain:
 *
 *   uuid (add-domain only), mac-addr (rasd:Address), hostid, failure-policy,
 *   master, cpu-arch, perf-counters, extended-mapin-space, rc-add-policy,
 *   boot-policy, shutdown-group, max-cores.
 *
 * Pure functions on a draft state; a refusal throws a ModelError.
 */
import { refusalMessages as m } from '../messages.ts';
import type { MachineSpec } from './machine.ts';
import { refuse } from './refusal.ts';
import type { BootPolicy, CpuArch, DomainConfig, FailurePolicy, LdmState } from './types.ts';

/** What a request asks of a domain's properties (undefined: unchanged). */
export interface DomainProps {
  uuid?: string;
  failurePolicy?: string;
  master?: string;
  hostid?: string;
  mac?: string;
  cpuArch?: string;
  perfCounters?: string;
  extendedMapinSpace?: string;
  rcAddPolicy?: string;
  bootPolicy?: string;
  shutdownGroup?: string;
  maxCores?: string;
}

const FAILURE_POLICIES: readonly FailurePolicy[] = ['ignore', 'panic', 'reset', 'stop'];
const CPU_ARCHS: readonly CpuArch[] = ['native', 'generic', 'migration-class1'];
const BOOT_POLICIES: readonly BootPolicy[] = ['enforce', 'none', 'warning'];
const PERF_COUNTER_SETS = ['global', 'htstrand', 'strand'];
const ON_OFF = ['on', 'off'];
/** rc-add-policy takes `iov` or nothing (ldm(1M): `rc-add-policy=[iov]`). */
const RC_ADD_POLICIES = ['iov', ''];
/** Shutdown groups: the primary is always 0; other domains 1 (last) to 15 (first), 15 by default. */
const SHUTDOWN_GROUP_MAX = 15;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HOSTID_RE = /^(0x)?[0-9a-f]{1,8}$/i;
/** The control domain's name (ldm.ts's PRIMARY; not imported, ldm.ts imports this module). */
const CONTROL_DOMAIN = 'primary';

/** The properties of a new domain (ldm(1M)'s defaults; `htstrand` performance counters as the 3.5 guide says). */
export function defaultProps(primary: boolean): Pick<
  DomainConfig,
  'failurePolicy' | 'master' | 'cpuArch' | 'perfCounters' | 'extendedMapinSpace' | 'rcAddPolicy' | 'bootPolicy' | 'shutdownGroup' | 'maxCores'
> {
  return {
    failurePolicy: 'ignore',
    master: [],
    cpuArch: 'native',
    perfCounters: 'htstrand',
    extendedMapinSpace: 'off',
    rcAddPolicy: '',
    bootPolicy: 'warning',
    shutdownGroup: primary ? 0 : SHUTDOWN_GROUP_MAX,
    maxCores: 'unlimited',
  };
}

/** Fill in the properties a domain saved by an earlier version does not have. */
export function upgradeDomain(d: DomainConfig, primary: boolean): void {
  const defaults = defaultProps(primary);
  const raw = d as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(defaults)) if (raw[key] === undefined) raw[key] = value;
}

/** A MAC address as the model keeps it: lower case, two digits per byte. */
export const canonicalMac = (mac: string): string => mac.toLowerCase().split(':').map((b) => b.padStart(2, '0')).join(':');

/** A host id's value, whatever its spelling (`0x84F8A2C3`, `84f8a2c3`). */
export const hostidValue = (hostid: string): number => Number.parseInt(hostid.replace(/^0x/i, ''), 16);

export function hostidInUse(s: Readonly<LdmState>, value: number, except?: DomainConfig): DomainConfig | undefined {
  return s.domains.find((o) => o !== except && hostidValue(o.hostid) === value);
}

function oneOf<T extends string>(key: string, value: string, valid: readonly T[]): T {
  if (!valid.includes(value as T)) refuse(m.badValue(key, value, valid.map((v) => (v === '' ? '(empty)' : v))));
  return value as T;
}

/**
 * Apply `p` to `d` (in the draft `s`). `creating`: add-domain, where a uuid
 * may be given; set-domain may only repeat the domain's own uuid (so that
 * list-domain output can be sent back). `checkMac` takes a user's MAC address.
 */
export function applyProps(
  s: LdmState,
  d: DomainConfig,
  p: DomainProps,
  machine: MachineSpec,
  creating: boolean,
  checkMac: (mac: string) => string,
): void {
  const primary = d.name === CONTROL_DOMAIN;
  if (p.uuid !== undefined) {
    if (!UUID_RE.test(p.uuid)) refuse(m.badUuid(p.uuid));
    const uuid = p.uuid.toLowerCase();
    if (!creating && uuid !== d.uuid) refuse(m.uuidOnlyAtCreation(d.name));
    const other = s.domains.find((o) => o !== d && o.uuid === uuid);
    if (other) refuse(m.uuidInUse(uuid, other.name));
    d.uuid = uuid;
  }
  if (p.failurePolicy !== undefined) d.failurePolicy = oneOf('failure-policy', p.failurePolicy, FAILURE_POLICIES);
  if (p.cpuArch !== undefined) d.cpuArch = oneOf('cpu-arch', p.cpuArch, CPU_ARCHS);
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
    if (!HOSTID_RE.test(p.hostid)) refuse(m.badValue('hostid', p.hostid, ['a 32-bit hexadecimal number']));
    const other = hostidInUse(s, hostidValue(p.hostid), d);
    if (other) refuse(m.hostidInUse(p.hostid, other.name));
    // Kept as given (`0x84F8A2C3`, `84f8a2c3`): listings show it the way it was set.
    d.hostid = p.hostid;
  }
  if (p.mac !== undefined && canonicalMac(p.mac) !== d.mac) d.mac = checkMac(p.mac);
  if (p.perfCounters !== undefined) d.perfCounters = perfCounters(s, d, p.perfCounters);
  if (p.extendedMapinSpace !== undefined) d.extendedMapinSpace = oneOf('extended-mapin-space', p.extendedMapinSpace, ON_OFF) as 'on' | 'off';
  if (p.rcAddPolicy !== undefined) d.rcAddPolicy = oneOf('rc-add-policy', p.rcAddPolicy, RC_ADD_POLICIES) as '' | 'iov';
  if (p.bootPolicy !== undefined) d.bootPolicy = oneOf('boot-policy', p.bootPolicy, BOOT_POLICIES);
  if (p.shutdownGroup !== undefined) {
    const n = /^\d+$/.test(p.shutdownGroup) ? Number(p.shutdownGroup) : NaN;
    if (primary ? n !== 0 : !(n >= 1 && n <= SHUTDOWN_GROUP_MAX)) refuse(m.badShutdownGroup(d.name, p.shutdownGroup, primary));
    d.shutdownGroup = n;
  }
  if (p.maxCores !== undefined) {
    const cores = machine.cpu.cores;
    if (p.maxCores !== 'unlimited') {
      const n = /^\d+$/.test(p.maxCores) ? Number(p.maxCores) : NaN;
      if (!(n >= 1 && n <= cores)) refuse(m.badValue('max-cores', p.maxCores, ['unlimited', `1 to ${cores}`]));
      if (d.wholeCores > n) refuse(m.maxCoresBelow(d.name, n, d.wholeCores));
    }
    d.maxCores = p.maxCores;
  }
}

/**
 * perf-counters: `global`, `strand`, `htstrand`, or `global` with one of the
 * other two, or empty (no access). Only one domain at a time may have the
 * global counters (the 3.5 guide's rule).
 */
function perfCounters(s: Readonly<LdmState>, d: DomainConfig, value: string): string {
  const sets = value.split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of sets) if (!PERF_COUNTER_SETS.includes(x)) refuse(m.badValue('perf-counters', value, PERF_COUNTER_SETS));
  if (new Set(sets).size !== sets.length || (sets.includes('strand') && sets.includes('htstrand'))) refuse(m.badPerfCounters(value));
  if (sets.includes('global')) {
    const other = s.domains.find((o) => o !== d && o.perfCounters.split(',').map((x) => x.trim()).includes('global'));
    if (other) refuse(m.globalCountersTaken(other.name));
  }
  return sets.join(',');
}

/** max-cores bounds whole-core counts (set-vcpu/add-vcpu with wcore). */
export function checkMaxCores(d: DomainConfig, wholeCores: number): void {
  if (d.maxCores !== 'unlimited' && wholeCores > Number(d.maxCores)) refuse(m.maxCoresBelow(d.name, Number(d.maxCores), wholeCores));
}
