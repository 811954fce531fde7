// Allocation invariants under random sequences of changes: nothing is ever bound twice, every
// bound domain holds exactly what it asked for, and what is free plus what is bound is the machine.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeMemory, freeStrands } from '../agent/model/allocate.ts';
import { Ldm, ModelError, type ModelEvent } from '../agent/model/ldm.ts';
import { loadMachine } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';

const machine = loadMachine();
/** Guests are not this test's subject: start and stop do nothing. */
const noGuests = { start() {}, stop() {} };
const GiB = 2 ** 30;

/** A store that keeps the state in memory: this test is about allocation, not files. */
class MemoryStore extends StateStore {
  saved: string | undefined;
  override async load() {
    return this.saved ? JSON.parse(this.saved) : undefined;
  }
  override async save(state: Parameters<StateStore['save']>[0]) {
    this.saved = JSON.stringify(state);
  }
}

function checkInvariants(ldm: Ldm): string | undefined {
  const s = ldm.snapshot;
  const strands = new Map<number, string>();
  const mau = new Map<number, string>();
  const ranges: { pa: number; end: number; who: string }[] = [];
  for (const d of s.domains) {
    const b = d.bindings;
    if ((d.state === 'inactive') !== (b === undefined)) return `${d.name} is ${d.state} with${b ? '' : 'out'} bindings`;
    if (!b) continue;
    if (b.strands.length !== d.vcpus) return `${d.name} asked ${d.vcpus} vCPUs, holds ${b.strands.length}`;
    const mem = b.memory.reduce((a, x) => a + x.size, 0);
    if (d.delayedReconf?.memory === undefined && mem !== d.memory) return `${d.name} asked ${d.memory} bytes, holds ${mem}`;
    if (b.mau.length !== d.mau) return `${d.name} asked ${d.mau} crypto units, holds ${b.mau.length}`;
    for (const x of b.strands) {
      if (strands.has(x)) return `strand ${x} bound to ${strands.get(x)} and ${d.name}`;
      strands.set(x, d.name);
    }
    for (const x of b.mau) {
      if (mau.has(x)) return `crypto unit ${x} bound to ${mau.get(x)} and ${d.name}`;
      mau.set(x, d.name);
      const cores = new Set(b.strands.map((st) => Math.floor(st / machine.cpu.threadsPerCore)));
      if (!cores.has(Math.floor(x / machine.cpu.cryptoUnitsPerCore))) return `${d.name} holds crypto unit ${x} off its cores`;
    }
    let ra = 0x8000000;
    for (const blk of [...b.memory].sort((a, c) => a.ra - c.ra)) {
      if (blk.ra !== ra) return `${d.name} has a hole in its real addresses at ${blk.ra.toString(16)}`;
      ra += blk.size;
      ranges.push({ pa: blk.pa, end: blk.pa + blk.size, who: d.name });
    }
  }
  ranges.sort((a, b) => a.pa - b.pa);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.pa < ranges[i - 1]!.end) return `memory at ${ranges[i]!.pa.toString(16)} bound to ${ranges[i - 1]!.who} and ${ranges[i]!.who}`;
  }
  const total = machine.cpu.cores * machine.cpu.threadsPerCore;
  if (freeStrands(machine, s).length + strands.size !== total) return 'free + bound strands is not the machine';
  const freeMem = freeMemory(machine, s).reduce((a, r) => a + r.size, 0);
  const boundMem = ranges.reduce((a, r) => a + r.end - r.pa, 0);
  if (freeMem + boundMem !== 64 * GiB) return `free ${freeMem} + bound ${boundMem} is not the machine's memory`;
  return undefined;
}

const NAMES = ['a', 'b', 'c', 'd', 'e'];
const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), name: fc.constantFrom(...NAMES) }),
  // A whole guest at once, so that sequences often reach bind and start.
  { arbitrary: fc.record({ kind: fc.constant('build' as const), name: fc.constantFrom(...NAMES), n: fc.integer({ min: 1, max: 16 }), gib: fc.integer({ min: 1, max: 16 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constantFrom('bind' as const, 'start' as const), name: fc.constantFrom(...NAMES) }), weight: 3 },
  fc.record({ kind: fc.constant('vcpu' as const), name: fc.constantFrom(...NAMES, 'primary'), how: fc.constantFrom('add' as const, 'set' as const, 'remove' as const), n: fc.integer({ min: 1, max: 24 }), wcore: fc.boolean() }),
  fc.record({ kind: fc.constant('mem' as const), name: fc.constantFrom(...NAMES), how: fc.constantFrom('add' as const, 'set' as const, 'remove' as const), gib: fc.integer({ min: 1, max: 24 }) }),
  fc.record({ kind: fc.constant('mau' as const), name: fc.constantFrom(...NAMES), how: fc.constantFrom('add' as const, 'set' as const, 'remove' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constantFrom('bind' as const, 'unbind' as const, 'start' as const, 'stop' as const, 'remove' as const), name: fc.constantFrom(...NAMES) }),
);

t.test('random changes never bind anything twice (500 sequences of 40 changes)', async (t) => {
  let applied = 0;
  let refused = 0;
  let binds = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 40, maxLength: 40 }), async (ops) => {
      const events: ModelEvent[] = [];
      const ldm = await Ldm.open(machine, new MemoryStore(join(tmpdir(), 'unused')), (e) => events.push(e), noGuests);
      await ldm.addVcc('vcc0', 'primary', 5000, 5100);
      for (const o of ops) {
        try {
          if (o.kind === 'add') await ldm.addDomain(o.name);
          else if (o.kind === 'build') {
            if (!ldm.domain(o.name)) await ldm.addDomain(o.name);
            await ldm.setVcpus(o.name, 'set', o.n, false);
            await ldm.setMemory(o.name, 'set', o.gib * GiB);
          }
          else if (o.kind === 'vcpu') await ldm.setVcpus(o.name, o.how, o.n, o.wcore);
          else if (o.kind === 'mem') await ldm.setMemory(o.name, o.how, o.gib * GiB);
          else if (o.kind === 'mau') await ldm.setMau(o.name, o.how, o.n);
          else if (o.kind === 'bind') {
            await ldm.bindDomain(o.name);
            binds++;
          }
          else if (o.kind === 'unbind') await ldm.unbindDomain(o.name);
          else if (o.kind === 'start') await ldm.startDomain(o.name);
          else if (o.kind === 'stop') await ldm.stopDomain(o.name);
          else await ldm.removeDomain([o.name]);
          applied++;
        } catch (err) {
          if (!(err instanceof ModelError)) throw err;
          refused++;
        }
        const broken = checkInvariants(ldm);
        if (broken) throw new Error(`after ${JSON.stringify(o)}: ${broken}`);
      }
    }),
    { seed: 4242, numRuns: 500 },
  );
  t.ok(applied > 2000 && refused > 2000, `${applied} changes applied, ${refused} refused, invariants held after each`);
  t.ok(binds > 300, `${binds} binds succeeded: the sequences reach bound and active states`);
});

t.test('growing a bound domain takes memory nobody holds', async (t) => {
  const ldm = await Ldm.open(machine, new MemoryStore(join(mkdtempSync(join(tmpdir(), 'ldm-')), 'x')), () => {}, noGuests);
  await ldm.addVcc('vcc0', 'primary', 5000, 5100);
  await ldm.addDomain('g');
  await ldm.setVcpus('g', 'set', 1, false);
  await ldm.setMemory('g', 'set', 4 * GiB);
  await ldm.bindDomain('g');
  const before = freeMemory(machine, ldm.snapshot).reduce((a, r) => a + r.size, 0);
  await ldm.setMemory('g', 'add', 2 * GiB);
  const after = freeMemory(machine, ldm.snapshot).reduce((a, r) => a + r.size, 0);
  t.equal(before - after, 2 * GiB, 'free memory shrank by what was added');
  t.equal(checkInvariants(ldm), undefined);
});
