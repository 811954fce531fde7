/**
 * The simulated physical machine (contract.md "Machine file"): read from
 * `--machine FILE` or the built-in SPARC T4-1-like default.
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { ErrorCodes, LdmError } from '../errors.ts';
import { modelMessages } from '../messages.ts';
import { parseSize } from './sizes.ts';

export interface MachineSpec {
  hostname: string;
  hostid: string;
  platform: string;
  firmware: string;
  managerVersion: string;
  cpu: { type: string; frequencyMHz: number; cores: number; threadsPerCore: number; cryptoUnitsPerCore: number };
  /** Physical memory banks: physical address and size in bytes. */
  memory: { pa: number; size: number }[];
  io: { name: string; kind: string }[];
  niu: string[];
  powerPolicy: string;
  primary: { vcpus: number; memory: number };
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
  io?: { name: string; kind: string }[];
  niu?: string[];
  powerPolicy?: string;
  primary?: { vcpus?: number; memory?: string };
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
    { name: 'pci@400', kind: 'pci-bus' },
    { name: 'pci@500', kind: 'pci-bus' },
    { name: '/SYS/MB/PCIE1', kind: 'pcie-endpoint' },
    { name: '/SYS/MB/PCIE2', kind: 'pcie-endpoint' },
  ],
  niu: ['niu@480'],
  powerPolicy: 'performance',
  primary: { vcpus: 8, memory: '4G' },
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

/** Normalize a machine description; `where` names its source in error messages. */
export function machineFromJson(json: unknown, where: string): MachineSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(where, 'expected a JSON object');
  const f = { ...DEFAULT_MACHINE_FILE, ...(json as MachineFile) };
  const cpu = { ...DEFAULT_MACHINE_FILE.cpu, ...f.cpu };
  const spec: MachineSpec = {
    hostname: typeof f.hostname === 'string' && f.hostname !== '' ? f.hostname : osHostname(),
    hostid: String(f.hostid),
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
    io: Array.isArray(f.io) ? f.io.map((d) => ({ name: String(d.name), kind: String(d.kind) })) : [],
    niu: Array.isArray(f.niu) ? f.niu.map(String) : [],
    powerPolicy: String(f.powerPolicy),
    primary: {
      vcpus: positiveInt(f.primary?.vcpus ?? DEFAULT_MACHINE_FILE.primary.vcpus, where, 'primary.vcpus'),
      memory: size(f.primary?.memory ?? DEFAULT_MACHINE_FILE.primary.memory, where, 'primary.memory'),
    },
  };
  const strands = spec.cpu.cores * spec.cpu.threadsPerCore;
  if (spec.primary.vcpus > strands) fail(where, `primary.vcpus (${spec.primary.vcpus}) exceeds the machine's ${strands} strands`);
  const total = spec.memory.reduce((a, b) => a + b.size, 0);
  if (spec.primary.memory > total) fail(where, 'primary.memory exceeds the machine memory');
  return spec;
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
