/**
 * The simulated physical machine (contract.md "Machine file"): read from
 * `--machine FILE` or the built-in SPARC T4-1-like default.
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { ErrorCodes, LdmError } from '../errors.ts';
import { modelMessages } from '../messages.ts';
import { DEFAULT_MAX_DOMAINS, MAX_DOMAINS_CEILING } from './limits.ts';
import { parseSize } from './sizes.ts';
import type { IovClass } from './types.ts';

export interface MachineSpec {
  hostname: string;
  hostid: string;
  platform: string;
  firmware: string;
  managerVersion: string;
  cpu: { type: string; frequencyMHz: number; cores: number; threadsPerCore: number; cryptoUnitsPerCore: number };
  /** Physical memory banks: physical address and size in bytes. */
  memory: { pa: number; size: number }[];
  io: IoDeviceSpec[];
  niu: string[];
  powerPolicy: string;
  primary: { vcpus: number; memory: number };
  /** The most domains the machine holds, the primary included (agent/model/limits.ts). */
  maxDomains: number;
}

/** SR-IOV capability of a PCIe endpoint: its function class, physical functions and VFs per physical function. */
export interface SriovSpec {
  type: IovClass;
  maxVfs: number;
  /** Physical functions on the device (PF0, PF1, ...). */
  pfs: number;
}

/**
 * A physical I/O device. Buses (`pci-bus`) have a pseudonym (`pci_0`, by
 * their order unless `alias` says otherwise) and I/O virtualization on or
 * off at the first start (`iov`); endpoints sit on a bus (`bus`, by default
 * the first) and may be SR-IOV devices (`sriov`).
 */
export interface IoDeviceSpec {
  name: string;
  kind: string;
  alias?: string;
  bus?: string;
  iov?: boolean;
  /** An endpoint slot with no card in it (list-io status EMP). */
  empty?: boolean;
  sriov?: SriovSpec;
}

/** The file format, as users write it (sizes and addresses as strings). */
interface MachineFile {
  hostname?: string;
  hostid?: string;
  platform?: string;
  firmware?: string;
  managerVersion?: string;
  cpu?: Partial<MachineSpec['cpu']>;
  memory?: { pa: string; size: string }[];
  io?: { name: string; kind: string; alias?: string; bus?: string; iov?: boolean; empty?: boolean; sriov?: { type?: string; maxVfs?: number; pfs?: number } }[];
  niu?: string[];
  powerPolicy?: string;
  primary?: { vcpus?: number; memory?: string };
  maxDomains?: number;
}

export const DEFAULT_MACHINE_FILE: Required<MachineFile> = {
  hostname: '',
  hostid: '0x84f8a2c3',
  platform: 'SPARC T4-1',
  firmware: '8.2.2.c',
  managerVersion: '2.1',
  cpu: { type: 'SPARC-T4', frequencyMHz: 2848, cores: 8, threadsPerCore: 8, cryptoUnitsPerCore: 1 },
  memory: [{ pa: '0x8000000', size: '64G' }],
  io: [
    // pci_0 has I/O virtualization on from the start, pci_1 not (set-io turns it on).
    { name: 'pci@400', kind: 'pci-bus', iov: true },
    { name: 'pci@500', kind: 'pci-bus' },
    { name: '/SYS/MB/PCIE1', kind: 'pcie-endpoint', bus: 'pci@400' },
    { name: '/SYS/MB/PCIE2', kind: 'pcie-endpoint', bus: 'pci@500' },
    // The on-board network device: two Ethernet physical functions with up to 7 VFs each.
    { name: '/SYS/MB/NET0', kind: 'pcie-endpoint', bus: 'pci@400', sriov: { type: 'ethernet', maxVfs: 7, pfs: 2 } },
  ],
  niu: ['niu@480'],
  powerPolicy: 'performance',
  primary: { vcpus: 8, memory: '4G' },
  maxDomains: DEFAULT_MAX_DOMAINS,
};

function fail(where: string, what: string): never {
  throw new LdmError(ErrorCodes.MACHINE, modelMessages.badMachine(where, what));
}

function positiveInt(v: unknown, where: string, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(where, `${field} must be a positive integer`);
  return v;
}

function size(v: unknown, where: string, field: string): number {
  const n = typeof v === 'string' ? parseSize(v) : null;
  if (n === null || n <= 0) fail(where, `${field} must be a size such as "4G"`);
  return n;
}

function address(v: unknown, where: string, field: string): number {
  const n = typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v) ? Number.parseInt(v, 16) : NaN;
  if (!Number.isSafeInteger(n)) fail(where, `${field} must be a hexadecimal address such as "0x8000000"`);
  return n;
}

/**
 * The machine's host id, a 32-bit hexadecimal number as Solaris prints it: the
 * primary's host id, and the seed of the UUIDs and of where automatic MAC
 * addresses and host ids start (agent/model/ldm.ts), so agents whose machine
 * files differ here get distinct identities. Written one way (`0x`, eight
 * lower-case digits) so that spellings of one value seed the same identities.
 */
function hostid(v: unknown, where: string): string {
  if (typeof v !== 'string' || !/^(0x)?[0-9a-f]{1,8}$/i.test(v)) fail(where, 'hostid must be a 32-bit hexadecimal number such as "0x84f8a2c3"');
  return `0x${v.replace(/^0x/i, '').toLowerCase().padStart(8, '0')}`;
}

/** Normalize a machine description; `where` names its source in error messages. */
export function machineFromJson(json: unknown, where: string): MachineSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(where, 'expected a JSON object');
  const f = { ...DEFAULT_MACHINE_FILE, ...(json as MachineFile) };
  const cpu = { ...DEFAULT_MACHINE_FILE.cpu, ...f.cpu };
  const spec: MachineSpec = {
    hostname: typeof f.hostname === 'string' && f.hostname !== '' ? f.hostname : osHostname(),
    hostid: hostid(f.hostid, where),
    platform: String(f.platform),
    firmware: String(f.firmware),
    managerVersion: String(f.managerVersion),
    cpu: {
      type: String(cpu.type),
      frequencyMHz: positiveInt(cpu.frequencyMHz, where, 'cpu.frequencyMHz'),
      cores: positiveInt(cpu.cores, where, 'cpu.cores'),
      threadsPerCore: positiveInt(cpu.threadsPerCore, where, 'cpu.threadsPerCore'),
      cryptoUnitsPerCore: cpu.cryptoUnitsPerCore === 0 ? 0 : positiveInt(cpu.cryptoUnitsPerCore, where, 'cpu.cryptoUnitsPerCore'),
    },
    memory: (Array.isArray(f.memory) ? f.memory : fail(where, 'memory must be a list of banks')).map((b, i) => ({
      pa: address(b?.pa, where, `memory[${i}].pa`),
      size: size(b?.size, where, `memory[${i}].size`),
    })),
    io: ioDevices(f.io, where),
    niu: Array.isArray(f.niu) ? f.niu.map(String) : [],
    powerPolicy: String(f.powerPolicy),
    primary: {
      vcpus: positiveInt(f.primary?.vcpus ?? DEFAULT_MACHINE_FILE.primary.vcpus, where, 'primary.vcpus'),
      memory: size(f.primary?.memory ?? DEFAULT_MACHINE_FILE.primary.memory, where, 'primary.memory'),
    },
    maxDomains: positiveInt(f.maxDomains, where, 'maxDomains'),
  };
  const strands = spec.cpu.cores * spec.cpu.threadsPerCore;
  if (spec.primary.vcpus > strands) fail(where, `primary.vcpus (${spec.primary.vcpus}) exceeds the machine's ${strands} strands`);
  const total = spec.memory.reduce((a, b) => a + b.size, 0);
  if (spec.primary.memory > total) fail(where, 'primary.memory exceeds the machine memory');
  if (spec.maxDomains > MAX_DOMAINS_CEILING) fail(where, `maxDomains (${spec.maxDomains}) exceeds ${MAX_DOMAINS_CEILING}`);
  return spec;
}

const IOV_CLASSES: readonly IovClass[] = ['ethernet', 'fibrechannel', 'infiniband'];
/** PCIe allows 256 functions per device; a VF count beyond that is a typo. */
const MAX_FUNCTIONS = 256;

/** The `io` list: names unique, endpoints on a bus of the file, SR-IOV only on endpoints. */
function ioDevices(list: unknown, where: string): IoDeviceSpec[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail(where, 'io must be a list of devices');
  const raw = list as NonNullable<MachineFile['io']>;
  const buses = raw.filter((d) => d?.kind === 'pci-bus').map((d) => String(d.name));
  const seen = new Set<string>();
  let busIndex = 0;
  return raw.map((d, i) => {
    if (typeof d !== 'object' || d === null || typeof d.name !== 'string' || d.name === '') fail(where, `io[${i}].name must be a non-empty string`);
    if (seen.has(d.name)) fail(where, `io[${i}].name ${d.name} appears twice`);
    seen.add(d.name);
    const dev: IoDeviceSpec = { name: d.name, kind: String(d.kind) };
    if (dev.kind === 'pci-bus') {
      dev.alias = typeof d.alias === 'string' && d.alias !== '' ? d.alias : `pci_${busIndex}`;
      busIndex++;
      if (d.iov !== undefined && typeof d.iov !== 'boolean') fail(where, `io[${i}].iov must be true or false`);
      dev.iov = d.iov === true;
      if (seen.has(dev.alias) || raw.some((o) => o?.name === dev.alias)) fail(where, `io[${i}].alias ${dev.alias} is also the name of another device`);
      seen.add(dev.alias);
    } else if (dev.kind === 'pcie-endpoint') {
      if (d.bus !== undefined && !buses.includes(String(d.bus))) fail(where, `io[${i}].bus ${String(d.bus)} is not a pci-bus of this file`);
      if (d.bus !== undefined || buses.length > 0) dev.bus = d.bus !== undefined ? String(d.bus) : buses[0]!;
      if (d.empty === true) dev.empty = true;
    }
    if (d.sriov !== undefined) {
      if (dev.kind !== 'pcie-endpoint') fail(where, `io[${i}].sriov: only a pcie-endpoint can have SR-IOV functions`);
      const type = d.sriov?.type as IovClass;
      if (!IOV_CLASSES.includes(type)) fail(where, `io[${i}].sriov.type must be one of ${IOV_CLASSES.join(', ')}`);
      const maxVfs = positiveInt(d.sriov.maxVfs, where, `io[${i}].sriov.maxVfs`);
      const pfs = d.sriov.pfs === undefined ? 1 : positiveInt(d.sriov.pfs, where, `io[${i}].sriov.pfs`);
      if (maxVfs * pfs > MAX_FUNCTIONS) fail(where, `io[${i}].sriov: ${pfs} x ${maxVfs} functions exceed the ${MAX_FUNCTIONS} a PCIe device can have`);
      if (d.empty === true) fail(where, `io[${i}]: an empty slot has no SR-IOV functions`);
      dev.sriov = { type, maxVfs, pfs };
    }
    return dev;
  });
}

/** The machine of `--machine FILE`, or the built-in one when no file is given. */
export function loadMachine(file?: string, hostnameOverride?: string): MachineSpec {
  let spec: MachineSpec;
  if (file === undefined) spec = machineFromJson({}, 'built-in machine');
  else {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new LdmError(ErrorCodes.MACHINE, modelMessages.badMachine(file, (err as Error).message));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new LdmError(ErrorCodes.MACHINE, modelMessages.badMachine(file, `not valid JSON: ${(err as Error).message}`));
    }
    spec = machineFromJson(json, file);
  }
  if (hostnameOverride) spec.hostname = hostnameOverride;
  return spec;
}
