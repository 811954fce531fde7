/**
 * Allocation of the machine's resources to domains: strands of cores, memory
 * blocks with real and physical addresses, crypto units, console ports.
 * Pure functions over the machine and the bindings of the other domains, so
 * bind, add-* and the migration target's checks share one answer.
 */
import type { MachineSpec } from './machine.ts';
import type { Bindings, DomainConfig, LdmState, MemoryBlock } from './types.ts';

/** Memory is allocated in units of 256 MiB, aligned the same way (physical and real). */
export const MEMORY_UNIT = 256 * 1024 * 1024;
/** Real address where every domain's memory starts (the hypervisor's guest base). */
export const RA_BASE = 0x8000000;
/** The most memory blocks one domain's memory may be split into (the hypervisor's limit). */
export const MAX_MEMORY_BLOCKS = 8;

export type AllocationFailure =
  | { kind: 'cpu'; wanted: number; free: number }
  | { kind: 'cores'; wanted: number; free: number }
  | { kind: 'memory'; wanted: number; free: number }
  | { kind: 'fragmented'; wanted: number; free: number; largest: number }
  | { kind: 'mau'; wanted: number; free: number }
  | { kind: 'console' };

export class AllocationError extends Error {
  constructor(readonly failure: AllocationFailure) {
    super(failure.kind);
    this.name = 'AllocationError';
  }
}

export const coreOf = (machine: MachineSpec, strand: number) => Math.floor(strand / machine.cpu.threadsPerCore);

export function roundMemory(bytes: number): number {
  return Math.ceil(bytes / MEMORY_UNIT) * MEMORY_UNIT;
}

function boundDomains(state: LdmState, except?: string): Bindings[] {
  return state.domains.filter((d) => d.bindings && d.name !== except).map((d) => d.bindings!);
}

/** Strands not bound to any domain (except `except`), in order. */
export function freeStrands(machine: MachineSpec, state: LdmState, except?: string): number[] {
  const used = new Set(boundDomains(state, except).flatMap((b) => b.strands));
  const total = machine.cpu.cores * machine.cpu.threadsPerCore;
  const free: number[] = [];
  for (let s = 0; s < total; s++) if (!used.has(s)) free.push(s);
  return free;
}

/** Cores whose every strand is free. */
export function freeCores(machine: MachineSpec, free: number[]): number[] {
  const perCore = new Map<number, number>();
  for (const s of free) perCore.set(coreOf(machine, s), (perCore.get(coreOf(machine, s)) ?? 0) + 1);
  return [...perCore].filter(([, n]) => n === machine.cpu.threadsPerCore).map(([c]) => c);
}

/**
 * `count` strands; with `wholeCores` > 0, that many complete cores instead.
 * Plain strands fill partly used cores first, so whole cores stay available.
 */
export function allocateStrands(machine: MachineSpec, free: number[], count: number, wholeCores: number): number[] {
  const tpc = machine.cpu.threadsPerCore;
  if (wholeCores > 0) {
    const cores = freeCores(machine, free);
    if (cores.length < wholeCores) throw new AllocationError({ kind: 'cores', wanted: wholeCores, free: cores.length });
    return cores.slice(0, wholeCores).flatMap((c) => Array.from({ length: tpc }, (_, i) => c * tpc + i));
  }
  if (free.length < count) throw new AllocationError({ kind: 'cpu', wanted: count, free: free.length });
  const whole = new Set(freeCores(machine, free));
  const partial = free.filter((s) => !whole.has(coreOf(machine, s)));
  return [...partial, ...free.filter((s) => whole.has(coreOf(machine, s)))].slice(0, count);
}

/** Free physical memory ranges (unit-aligned), lowest address first. */
export function freeMemory(machine: MachineSpec, state: LdmState, except?: string): { pa: number; size: number }[] {
  const used = boundDomains(state, except)
    .flatMap((b) => b.memory)
    .sort((a, b) => a.pa - b.pa);
  const free: { pa: number; size: number }[] = [];
  for (const bank of machine.memory) {
    let cursor = bank.pa;
    const end = bank.pa + bank.size;
    for (const u of used) {
      if (u.pa + u.size <= cursor || u.pa >= end) continue;
      if (u.pa > cursor) free.push({ pa: cursor, size: u.pa - cursor });
      cursor = Math.max(cursor, u.pa + u.size);
    }
    if (cursor < end) free.push({ pa: cursor, size: end - cursor });
  }
  // Only whole units can be bound.
  return free
    .map((r) => {
      const start = r.pa + ((MEMORY_UNIT - ((r.pa - machineBase(machine, r.pa)) % MEMORY_UNIT)) % MEMORY_UNIT);
      const size = Math.floor((r.pa + r.size - start) / MEMORY_UNIT) * MEMORY_UNIT;
      return { pa: start, size };
    })
    .filter((r) => r.size > 0);
}

/** Units are aligned from the start of the bank an address is in. */
function machineBase(machine: MachineSpec, pa: number): number {
  return machine.memory.find((b) => pa >= b.pa && pa < b.pa + b.size)?.pa ?? 0;
}

/**
 * Memory blocks for `size` bytes starting at real address `raStart`: one
 * range that holds it all when there is one (best fit), otherwise the largest
 * ranges first, at most MAX_MEMORY_BLOCKS blocks.
 */
export function allocateMemory(free: { pa: number; size: number }[], size: number, raStart = RA_BASE): MemoryBlock[] {
  const total = free.reduce((a, r) => a + r.size, 0);
  if (total < size) throw new AllocationError({ kind: 'memory', wanted: size, free: total });
  const fits = free.filter((r) => r.size >= size).sort((a, b) => a.size - b.size || a.pa - b.pa)[0];
  if (fits) return [{ ra: raStart, pa: fits.pa, size }];
  const blocks: MemoryBlock[] = [];
  let remaining = size;
  let ra = raStart;
  for (const r of [...free].sort((a, b) => b.size - a.size || a.pa - b.pa)) {
    if (remaining === 0) break;
    const take = Math.min(r.size, remaining);
    blocks.push({ ra, pa: r.pa, size: take });
    ra += take;
    remaining -= take;
  }
  if (blocks.length > MAX_MEMORY_BLOCKS) {
    throw new AllocationError({ kind: 'fragmented', wanted: size, free: total, largest: Math.max(...free.map((r) => r.size)) });
  }
  return blocks.sort((a, b) => a.ra - b.ra);
}

/** Crypto units free on the cores of `strands` (a unit serves the strands of its own core). */
export function allocateMau(machine: MachineSpec, state: LdmState, domain: string, strands: number[], count: number): number[] {
  if (count === 0) return [];
  const used = new Set(boundDomains(state, domain).flatMap((b) => b.mau));
  const per = machine.cpu.cryptoUnitsPerCore;
  const cores = [...new Set(strands.map((s) => coreOf(machine, s)))].sort((a, b) => a - b);
  const free = cores.flatMap((c) => Array.from({ length: per }, (_, i) => c * per + i)).filter((u) => !used.has(u));
  if (free.length < count) throw new AllocationError({ kind: 'mau', wanted: count, free: free.length });
  return free.slice(0, count);
}

/** The lowest free port of the domain's console concentrator. */
export function allocateConsole(state: LdmState, domain: DomainConfig): { port: number; service: string } {
  const vcc = state.vcc.find((v) => v.name === domain.console.service) ?? state.vcc[0];
  if (!vcc) throw new AllocationError({ kind: 'console' });
  const used = new Set(
    state.domains.filter((d) => d.name !== domain.name && d.bindings?.consoleService === vcc.name).map((d) => d.bindings!.consolePort),
  );
  const wanted = domain.console.port;
  if (wanted !== undefined && wanted >= vcc.minPort && wanted <= vcc.maxPort && !used.has(wanted)) return { port: wanted, service: vcc.name };
  for (let p = vcc.minPort; p <= vcc.maxPort; p++) if (!used.has(p)) return { port: p, service: vcc.name };
  throw new AllocationError({ kind: 'console' });
}

/** Everything a bind needs, or the first shortage. */
export function allocateDomain(machine: MachineSpec, state: LdmState, domain: DomainConfig, withConsole: boolean): Bindings {
  const strands = allocateStrands(machine, freeStrands(machine, state, domain.name), domain.vcpus, domain.wholeCores);
  const memory = allocateMemory(freeMemory(machine, state, domain.name), domain.memory);
  const mau = allocateMau(machine, state, domain.name, strands, domain.mau);
  const bindings: Bindings = { strands, memory, mau };
  if (withConsole) {
    const console = allocateConsole(state, domain);
    bindings.consolePort = console.port;
    bindings.consoleService = console.service;
  }
  return bindings;
}
