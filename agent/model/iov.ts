/**
 * Physical I/O by name, and SR-IOV on the simulated machine: buses with their
 * pseudonyms (`pci_0`), endpoints, the physical functions the machine file
 * gives SR-IOV endpoints, and the virtual functions create-vf makes of them.
 *
 * Pure functions on a draft state (ldm.ts runs them inside its change
 * machinery): a refusal throws a ModelError and the draft is dropped.
 *
 * Oracle's rules kept here: a VF is named after its physical function
 * (`/SYS/MB/NET0/IOVNET.PF0.VF0`); VFs are created in order and only the last
 * one can be destroyed; a VF assigned to a domain cannot be destroyed; VFs
 * are created only on a bus with I/O virtualization enabled. Our
 * simplification: set-io of a bus's `iov_bus_enable_iov` takes effect at once
 * (Oracle's needs the root domain rebooted).
 */
import { createHash } from 'node:crypto';
import { refusalMessages as m } from '../messages.ts';
import type { IoDeviceSpec, MachineSpec } from './machine.ts';
import { canonicalMac } from './properties.ts';
import { refuse } from './refusal.ts';
import type { IovClass, LdmState, PfConfig, VfConfig } from './types.ts';

/** Oracle's name parts per function class: IOVNET.PF0, IOVFC.PF0, IOVIB.PF0. */
const CLASS_PREFIX: Record<IovClass, string> = { ethernet: 'IOVNET', fibrechannel: 'IOVFC', infiniband: 'IOVIB' };

/** What a device name (or a bus pseudonym) names on this machine. */
export type IoDevice =
  | { kind: 'bus'; name: string; spec: IoDeviceSpec }
  | { kind: 'endpoint'; name: string; spec: IoDeviceSpec }
  | { kind: 'pf'; name: string; endpoint: IoDeviceSpec; cls: IovClass; maxVfs: number }
  | { kind: 'vf'; name: string; vf: VfConfig; pf: PhysicalFunction }
  | { kind: 'other'; name: string; spec: IoDeviceSpec };

export interface PhysicalFunction {
  name: string;
  endpoint: IoDeviceSpec;
  cls: IovClass;
  maxVfs: number;
}

/** Every physical function of the machine, in the order of the machine file. */
export function physicalFunctions(machine: MachineSpec): PhysicalFunction[] {
  return machine.io.flatMap((dev) =>
    dev.sriov
      ? Array.from({ length: dev.sriov.pfs }, (_, i) => ({
          name: `${dev.name}/${CLASS_PREFIX[dev.sriov!.type]}.PF${i}`,
          endpoint: dev,
          cls: dev.sriov!.type,
          maxVfs: dev.sriov!.maxVfs,
        }))
      : [],
  );
}

export const vfsOf = (s: LdmState): VfConfig[] => (s.vfs ??= []);

/** Resolve a device name as add-io, remove-io, set-io and list-io accept it; undefined when the machine has no such device. */
export function findIo(machine: MachineSpec, s: Readonly<LdmState>, name: string): IoDevice | undefined {
  const spec = machine.io.find((d) => d.name === name || (d.kind === 'pci-bus' && d.alias === name));
  if (spec) {
    if (spec.kind === 'pci-bus') return { kind: 'bus', name: spec.name, spec };
    if (spec.kind === 'pcie-endpoint') return { kind: 'endpoint', name: spec.name, spec };
    return { kind: 'other', name: spec.name, spec };
  }
  const pf = physicalFunctions(machine).find((p) => p.name === name);
  if (pf) return { kind: 'pf', name, endpoint: pf.endpoint, cls: pf.cls, maxVfs: pf.maxVfs };
  const vf = (s.vfs ?? []).find((v) => v.name === name);
  // A VF whose physical function the machine file no longer has is no device any more.
  const ofVf = vf && physicalFunctions(machine).find((p) => p.name === vf.pf);
  if (vf && ofVf) return { kind: 'vf', name, vf, pf: ofVf };
  return undefined;
}

/** The domain a device is assigned to now, or after the primary's pending reboot. */
export function ownerOf(s: Readonly<LdmState>, name: string): string | undefined {
  return (s.domains.find((d) => d.io.includes(name)) ?? s.domains.find((d) => d.delayedReconf?.io?.includes(name)))?.name;
}

export function iovEnabled(machine: MachineSpec, s: Readonly<LdmState>, bus: string): boolean {
  return s.iovBuses ? s.iovBuses.includes(bus) : machine.io.some((d) => d.name === bus && d.iov === true);
}

function setIov(machine: MachineSpec, s: LdmState, bus: string, on: boolean): void {
  const now = s.iovBuses ?? machine.io.filter((d) => d.kind === 'pci-bus' && d.iov === true).map((d) => d.name);
  s.iovBuses = on ? [...new Set([...now, bus])] : now.filter((b) => b !== bus);
}

const busAlias = (machine: MachineSpec, bus: string | undefined) => machine.io.find((d) => d.name === bus)?.alias ?? '';

/** A bus added to a domain whose rc-add-policy is `iov` gets I/O virtualization (Oracle's rc-add-policy). */
export function applyRcAddPolicy(machine: MachineSpec, s: LdmState, device: string, policy: string): void {
  if (policy === 'iov' && machine.io.some((d) => d.name === device && d.kind === 'pci-bus')) setIov(machine, s, device, true);
}

/**
 * Whether `device` may be given to a domain with add-io (or add-domain):
 * physical functions are not (their endpoint or their VFs are).
 */
export function assignable(machine: MachineSpec, s: Readonly<LdmState>, device: string): string {
  const dev = findIo(machine, s, device) ?? refuse(m.noSuchIo(device));
  if (dev.kind === 'pf') refuse(m.pfNotAssignable(dev.name));
  return dev.name;
}

/** An endpoint whose functions have VFs cannot leave its root domain: Oracle's order is destroy-vf first. */
export function checkRemovable(machine: MachineSpec, s: Readonly<LdmState>, device: string): void {
  const dev = findIo(machine, s, device);
  if (dev?.kind !== 'endpoint') return;
  const vfs = (s.vfs ?? []).filter((v) => v.pf.startsWith(`${dev.name}/`));
  if (vfs.length > 0) refuse(m.endpointHasVfs(dev.name, vfs.length));
}

// ── the properties set-io and create-vf take ─────────────────────────────

/** How MAC addresses are taken and checked (ldm.ts owns the machine's address space). */
export interface MacSource {
  next(): string;
  /** A user's MAC address, well-formed and free; returned in canonical form. */
  check(mac: string): string;
}

const VLAN_MIN = 1;
const VLAN_MAX = 4094;
const MTU_MIN = 576;
const MTU_MAX = 16000;
/** Alternate MAC addresses per VF. */
const MAX_ALT_MACS = 32;
/** Unicast slots of a physical function (the hardware's MAC filter table). */
const MAX_UNICAST_SLOTS = 128;

/** The properties set-io accepts per device kind (and class), in the order listings show them. */
export function settableKeys(dev: IoDevice): string[] {
  switch (dev.kind) {
    case 'bus':
      return ['iov_bus_enable_iov'];
    case 'pf':
      return dev.cls === 'ethernet' ? ['unicast-slots'] : [];
    case 'vf':
      if (dev.pf.cls === 'ethernet') return ['mac-addr', 'alt-mac-addrs', 'pvid', 'vid', 'mtu'];
      if (dev.pf.cls === 'fibrechannel') return ['port-wwn', 'node-wwn', 'bw-percent'];
      return [];
    default:
      return [];
  }
}

function intIn(key: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) refuse(m.ioValueRange(key, value, min, max));
  return Number(value);
}

function vlanList(key: string, value: string): string {
  const ids = value.split(',').map((x) => x.trim());
  return ids.map((x) => String(intIn(key, x, VLAN_MIN, VLAN_MAX))).join(',');
}

function wwn(key: string, value: string, s: Readonly<LdmState>, self: VfConfig): string {
  const norm = value.toLowerCase();
  if (!/^([0-9a-f]{2}:){7}[0-9a-f]{2}$/.test(norm)) refuse(m.badWwn(key, value));
  const other = (s.vfs ?? []).find((v) => v !== self && (v.portWwn === norm || v.nodeWwn === norm));
  if (other) refuse(m.wwnInUse(norm, other.name));
  return norm;
}

/** A WWN for a new Fibre Channel VF: reproducible from the machine and the VF's name, as UUIDs are. */
function autoWwn(machine: MachineSpec, vf: string, kind: 'port' | 'node'): string {
  const h = createHash('sha256').update(`${machine.hostid}/${vf}/${kind}`).digest('hex');
  // NAA 5 (IEEE registered): first nibble 5, the rest from the hash.
  return `5${h.slice(1, 16)}`.match(/../g)!.join(':');
}

/**
 * Apply set-io (or create-vf) properties to one device. Every key is checked
 * before anything changes; an unknown key is refused by name.
 */
export function applyIoProps(machine: MachineSpec, s: LdmState, dev: IoDevice, props: [string, string][], macs: MacSource): void {
  const valid = settableKeys(dev);
  for (const [key] of props) if (!valid.includes(key)) refuse(m.ioPropertyUnknown(key, dev.name, valid));
  for (const [key, value] of props) {
    if (dev.kind === 'bus') {
      if (value !== 'on' && value !== 'off') refuse(m.badValue(key, value, ['on', 'off']));
      if (value === 'off') {
        const pfsOnBus = new Set(physicalFunctions(machine).filter((p) => p.endpoint.bus === dev.name).map((p) => p.name));
        const onBus = (s.vfs ?? []).filter((v) => pfsOnBus.has(v.pf));
        if (onBus.length > 0) refuse(m.busHasVfs(dev.spec.alias ?? dev.name, onBus.length));
      }
      setIov(machine, s, dev.name, value === 'on');
    } else if (dev.kind === 'pf') {
      const pfs = (s.pfs ??= []);
      let pf: PfConfig | undefined = pfs.find((p) => p.name === dev.name);
      if (!pf) pfs.push((pf = { name: dev.name }));
      if (value === '') delete pf.unicastSlots;
      else pf.unicastSlots = intIn(key, value, 0, MAX_UNICAST_SLOTS);
    } else if (dev.kind === 'vf') {
      setVfProp(s, dev.vf, key, value, macs);
    }
  }
}

function setVfProp(s: LdmState, vf: VfConfig, key: string, value: string, macs: MacSource): void {
  switch (key) {
    case 'mac-addr': {
      if (value === '') refuse(m.badMac(value));
      if (canonicalMac(value) !== vf.mac) vf.mac = macs.check(value);
      return;
    }
    case 'alt-mac-addrs': {
      const entries = value === '' ? [] : value.split(',').map((x) => x.trim());
      if (entries.length > MAX_ALT_MACS) refuse(m.tooManyAltMacs(entries.length, MAX_ALT_MACS));
      // Addresses the VF has already are kept as they are: giving the same list again is no conflict.
      const own = new Set(vf.altMacs ?? []);
      const list = entries.map((e) => (e.toLowerCase() === 'auto' ? macs.next() : own.has(canonicalMac(e)) ? canonicalMac(e) : macs.check(e)));
      if (new Set(list).size !== list.length) refuse(m.macInUse(list.find((x, i) => list.indexOf(x) !== i)!));
      if (list.length > 0) vf.altMacs = list;
      else delete vf.altMacs;
      return;
    }
    case 'pvid':
      if (value === '') delete vf.pvid;
      else vf.pvid = intIn(key, value, VLAN_MIN, VLAN_MAX);
      return;
    case 'vid':
      if (value === '') delete vf.vid;
      else vf.vid = vlanList(key, value);
      return;
    case 'mtu':
      if (value === '') delete vf.mtu;
      else vf.mtu = intIn(key, value, MTU_MIN, MTU_MAX);
      return;
    case 'port-wwn':
      vf.portWwn = wwn(key, value, s, vf);
      return;
    case 'node-wwn':
      vf.nodeWwn = wwn(key, value, s, vf);
      return;
    case 'bw-percent': {
      const pct = intIn(key, value, 0, 100);
      const others = (s.vfs ?? []).filter((v) => v.pf === vf.pf && v !== vf).reduce((a, v) => a + (v.bwPercent ?? 0), 0);
      if (others + pct > 100) refuse(m.bandwidthOver(vf.pf, others, pct));
      vf.bwPercent = pct;
      return;
    }
  }
}

// ── create-vf, destroy-vf ────────────────────────────────────────────────

/** The physical function a create-vf or destroy-vf names, with its VFs in order. */
function thePf(machine: MachineSpec, s: Readonly<LdmState>, name: string): PhysicalFunction {
  const dev = findIo(machine, s, name) ?? refuse(m.noSuchIo(name));
  if (dev.kind !== 'pf') refuse(m.notAPf(dev.name));
  return physicalFunctions(machine).find((p) => p.name === dev.name)!;
}

const vfsOn = (s: Readonly<LdmState>, pf: string) => (s.vfs ?? []).filter((v) => v.pf === pf).sort((a, b) => a.index - b.index);

/**
 * create-vf: `count` new VFs (or as many as are left, `max`) on a physical
 * function, numbered after the existing ones, with the properties given.
 * Returns the new VFs' names.
 */
export function createVfs(machine: MachineSpec, s: LdmState, pfName: string, count: number | 'max', props: [string, string][], macs: MacSource): string[] {
  const pf = thePf(machine, s, pfName);
  const bus = pf.endpoint.bus;
  if (bus === undefined || !iovEnabled(machine, s, bus)) refuse(m.iovOff(busAlias(machine, bus) || pf.endpoint.name, pf.name));
  if (!ownerOf(s, pf.endpoint.name)) refuse(m.pfWithoutDomain(pf.name, pf.endpoint.name));
  const existing = vfsOn(s, pf.name);
  const wanted = count === 'max' ? pf.maxVfs - existing.length : count;
  if (wanted < 1 || existing.length + wanted > pf.maxVfs) refuse(m.tooManyVfs(pf.name, pf.maxVfs, existing.length));
  if (wanted > 1 && props.some(([k]) => k === 'mac-addr' || k === 'port-wwn' || k === 'node-wwn')) {
    refuse(m.uniquePropertyForMany(props.find(([k]) => ['mac-addr', 'port-wwn', 'node-wwn'].includes(k))![0]));
  }
  const created: string[] = [];
  const next = existing.length > 0 ? existing[existing.length - 1]!.index + 1 : 0;
  for (let i = 0; i < wanted; i++) {
    const vf: VfConfig = { name: `${pf.name}.VF${next + i}`, pf: pf.name, index: next + i };
    vfsOf(s).push(vf);
    if (pf.cls === 'ethernet' && !props.some(([k]) => k === 'mac-addr')) vf.mac = macs.next();
    if (pf.cls === 'fibrechannel') {
      if (!props.some(([k]) => k === 'port-wwn')) vf.portWwn = autoWwn(machine, vf.name, 'port');
      if (!props.some(([k]) => k === 'node-wwn')) vf.nodeWwn = autoWwn(machine, vf.name, 'node');
    }
    applyIoProps(machine, s, { kind: 'vf', name: vf.name, vf, pf }, props, macs);
    created.push(vf.name);
  }
  return created;
}

/**
 * destroy-vf: the last VF of its physical function (named itself, or by its
 * physical function), or the last `count` (`max`: all) of a physical function.
 * Returns the destroyed VFs' names.
 */
export function destroyVfs(machine: MachineSpec, s: LdmState, name: string, count: number | 'max' | undefined): string[] {
  const dev = findIo(machine, s, name) ?? refuse(m.noSuchIo(name));
  let victims: VfConfig[];
  if (dev.kind === 'vf') {
    if (count !== undefined) refuse(m.countNeedsPf(dev.name));
    const last = vfsOn(s, dev.vf.pf).pop()!;
    if (last !== dev.vf) refuse(m.notLastVf(dev.name, last.name));
    victims = [dev.vf];
  } else if (dev.kind === 'pf') {
    const all = vfsOn(s, dev.name);
    if (all.length === 0) refuse(m.noVfs(dev.name));
    const n = count === undefined ? 1 : count === 'max' ? all.length : count;
    if (n < 1 || n > all.length) refuse(m.notThatManyVfs(dev.name, n, all.length));
    victims = all.slice(all.length - n);
  } else return refuse(m.notAPf(dev.name));
  for (const vf of victims) {
    const owner = ownerOf(s, vf.name);
    if (owner) refuse(m.vfAssigned(vf.name, owner));
  }
  s.vfs = vfsOf(s).filter((v) => !victims.includes(v));
  return victims.map((v) => v.name);
}

// ── list-io ──────────────────────────────────────────────────────────────

/** One row of list-io: Oracle's columns, and for functions their class and settings. */
export interface IoRow {
  name: string;
  type: string;
  bus: string;
  domain: string;
  status: string;
  /** The bus's device path (pci@400) for BUS rows. */
  path?: string;
  props: [string, string][];
}

/** Every bus, endpoint, physical and virtual function, in Oracle's list-io order (BUS, PCIE, PF, VF). */
export function ioRows(machine: MachineSpec, s: Readonly<LdmState>): IoRow[] {
  const owner = (name: string) => s.domains.find((d) => d.io.includes(name))?.name ?? '';
  const rows: IoRow[] = [];
  for (const d of machine.io.filter((x) => x.kind === 'pci-bus')) {
    rows.push({ name: d.alias ?? d.name, type: 'BUS', bus: d.alias ?? d.name, domain: owner(d.name), status: iovEnabled(machine, s, d.name) ? 'IOV' : '', path: d.name, props: [] });
  }
  for (const d of machine.io.filter((x) => x.kind !== 'pci-bus')) {
    const type = d.kind === 'pcie-endpoint' ? 'PCIE' : d.kind.toUpperCase();
    rows.push({ name: d.name, type, bus: busAlias(machine, d.bus), domain: owner(d.name), status: d.kind === 'pcie-endpoint' ? (d.empty ? 'EMP' : 'OCC') : '', props: [] });
  }
  for (const pf of physicalFunctions(machine)) {
    const props: [string, string][] = [['class', pf.cls.toUpperCase()], ['max-vfs', String(pf.maxVfs)]];
    const slots = s.pfs?.find((p) => p.name === pf.name)?.unicastSlots;
    if (slots !== undefined) props.push(['unicast-slots', String(slots)]);
    rows.push({ name: pf.name, type: 'PF', bus: busAlias(machine, pf.endpoint.bus), domain: owner(pf.endpoint.name), status: '', props });
  }
  for (const pf of physicalFunctions(machine)) {
    for (const vf of vfsOn(s, pf.name)) {
      const props: [string, string][] = [['class', pf.cls.toUpperCase()]];
      if (vf.mac) props.push(['mac-addr', vf.mac]);
      if (vf.altMacs) props.push(['alt-mac-addrs', vf.altMacs.join(',')]);
      if (vf.pvid !== undefined) props.push(['pvid', String(vf.pvid)]);
      if (vf.vid) props.push(['vid', vf.vid]);
      if (vf.mtu !== undefined) props.push(['mtu', String(vf.mtu)]);
      if (vf.portWwn) props.push(['port-wwn', vf.portWwn]);
      if (vf.nodeWwn) props.push(['node-wwn', vf.nodeWwn]);
      if (vf.bwPercent !== undefined) props.push(['bw-percent', String(vf.bwPercent)]);
      rows.push({ name: vf.name, type: 'VF', bus: busAlias(machine, pf.endpoint.bus), domain: owner(vf.name), status: '', props });
    }
  }
  return rows;
}

/** Every MAC address the VFs use (primary and alternate), for the machine's address bookkeeping. */
export function vfMacs(s: Readonly<LdmState>): string[] {
  return (s.vfs ?? []).flatMap((v) => [...(v.mac ? [v.mac] : []), ...(v.altMacs ?? [])]);
}
