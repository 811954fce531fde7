// Phase 1 of a migration between two in-process models: the offer the source builds
// (and the checks it makes alone), and the target's checks in migration.md's order,
// each failing with its reason line and passing, with the plan of what to reserve.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOffer, checkOffer, failureLines, placeBlocks, planBindings, supportsMigrationClass1, type GuestSource, type GuestView } from '../agent/migration/checks.ts';
import { MIGRATION_PROTOCOL, type MigrationOffer } from '../agent/migration/offer.ts';
import { migrationMessages } from '../agent/messages.ts';
import { freeMemory, freeStrands, MEMORY_UNIT } from '../agent/model/allocate.ts';
import { Ldm } from '../agent/model/ldm.ts';
import { machineFromJson } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { RunState } from '../agent/hypervisor/hypervisor.ts';

const GiB = 2 ** 30;
const root = mkdtempSync(join(tmpdir(), 'ldm-migration-checks-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
/** Guests are not this test's subject: the model's start and stop do nothing. */
const noGuests = { start() {}, stop() {} };

/** A model of its own machine (machine-file keys over the built-in T4-1), saved in a temporary directory. */
async function model(hostname: string, file: Record<string, unknown> = {}): Promise<Ldm> {
  const dir = join(root, `state-${++dirs}`);
  mkdirSync(dir);
  return Ldm.open(machineFromJson({ hostname, ...file }, `${hostname}.json`), new StateStore(dir), () => {}, noGuests);
}

/** The services both machines offer (a target may leave some out). */
async function services(ldm: Ldm, opts: { vds?: boolean; vsw?: boolean; vcc?: [number, number] | null; options?: string[]; mpgroup?: string; vswMac: string }) {
  if (opts.vds !== false) {
    await ldm.addVds('primary-vds0', 'primary');
    await ldm.addVolume('primary-vds0', 'vol1', '/dev/zvol/dsk/ldg1', opts.options ?? [], opts.mpgroup);
  }
  if (opts.vsw !== false) await ldm.addVsw('primary-vsw0', 'primary', { mac: opts.vswMac });
  if (opts.vcc !== null) await ldm.addVcc('primary-vcc0', 'primary', ...(opts.vcc ?? [5000, 5100]));
}

/** The source machine, host-a: ldg1 (8 vCPUs, 6G, 1 crypto unit, a disk, a network) in the given state. */
async function source(state: 'inactive' | 'bound' | 'active', extra: { options?: string[]; mpgroup?: string; vcpus?: number; cpuArch?: string } = {}) {
  const ldm = await model('host-a');
  await services(ldm, { vswMac: '00:14:4f:fa:00:01', options: extra.options, mpgroup: extra.mpgroup });
  await ldm.addDomain('ldg1', extra.cpuArch ? { cpuArch: extra.cpuArch } : {}, {
    vcpus: extra.vcpus ?? 8,
    memory: 6 * GiB,
    mau: 1,
    vdisks: [{ name: 'disk0', volume: 'vol1', service: 'primary-vds0' }],
    vnets: [{ name: 'vnet0', service: 'primary-vsw0' }],
  });
  if (state !== 'inactive') await ldm.bindDomain('ldg1');
  if (state === 'active') await ldm.startDomain('ldg1');
  return ldm;
}

/** The guest as the hypervisor would show it. */
function guests(runState: RunState = 'solaris', os = 's11'): GuestSource {
  const guest: GuestView = { state: 'running', runState, os, pages: (6 * GiB) / 8192, touchedPages: 4096 };
  return { guest: (name) => (name === 'ldg1' ? guest : undefined) };
}

function offerOf(ldm: Ldm, opts: { target?: string; dryRun?: boolean; force?: boolean; guests?: GuestSource } = {}): MigrationOffer {
  const r = buildOffer(ldm, opts.guests ?? guests(), 'ldg1', opts.target, { dryRun: opts.dryRun ?? false, force: opts.force ?? false });
  if (!r.ok) throw new Error(`the source refused: ${r.reason}`);
  return r.offer;
}

/** A target with every service ldg1 needs (host-b, the built-in machine unless `file` says otherwise). */
async function target(file: Record<string, unknown> = {}, opts: Partial<Parameters<typeof services>[1]> = {}) {
  // Its own machine host ID: UUIDs derive from it (with the name), and a domain named ldg1 here must not have the source ldg1's.
  const ldm = await model('host-b', { hostid: '0x84f8b0b0', ...file });
  await services(ldm, { vswMac: '00:14:4f:fb:00:01', ...opts });
  return ldm;
}

/**
 * A target's own domain gets a MAC address and host ID of its own: both models number
 * their automatic ones from the same start, so a domain on the target would otherwise
 * hold the source ldg1's (the identity check refuses that, rightly).
 */
const own = (n: number) => ({ mac: `00:14:4f:fd:00:${n.toString(16).padStart(2, '0')}`, hostid: `0x84fd${n.toString(16).padStart(4, '0')}` });

function reason(r: ReturnType<typeof checkOffer>): string {
  return r.ok ? 'ok' : `${r.check}: ${r.reason}`;
}

// The sources, built once: buildOffer and checkOffer change nothing.
const active = await source('active');
const bound = await source('bound');
const inactive = await source('inactive');

t.test('the offer: the source machine, the domain with its bindings, the guest and the disk back ends', async (t) => {
  const offer = offerOf(active, { dryRun: true });
  const m = active.machine;
  t.same(offer.machine, {
    hostname: 'host-a',
    protocol: MIGRATION_PROTOCOL,
    managerVersion: m.managerVersion,
    firmware: m.firmware,
    platform: m.platform,
    cpu: { type: 'SPARC-T4', frequencyMHz: 2848, threadsPerCore: 8 },
    delayedReconf: false,
    powerPolicy: 'performance',
  });
  t.equal(offer.targetName, 'ldg1', 'the same name on the target unless renamed');
  t.equal(offer.dryRun, true);
  t.equal(offer.force, false);
  t.same(offer.domain.bindings, active.domain('ldg1')!.bindings, 'bindings travel as the source has them');
  t.not(offer.domain, active.domain('ldg1'), 'a copy, not the model\'s own object');
  t.same(offer.guest, { runState: 'solaris', os: 's11', pages: (6 * GiB) / 8192, touchedPages: 4096 });
  t.same(offer.vdiskBackends, [{ volume: 'vol1', service: 'primary-vds0', options: [] }]);

  const cold = offerOf(bound, { target: 'ldg9', force: true });
  t.equal(cold.guest, undefined, 'a bound domain has no guest: cold migration');
  t.equal(cold.targetName, 'ldg9');
  t.equal(cold.force, true);
});

t.test('the source refuses alone, in order: domain, control domain, physical I/O, guest state, OS', async (t) => {
  const no = (r: ReturnType<typeof buildOffer>) => (r.ok ? 'ok' : `${r.check}: ${r.reason}`);
  const opts = { dryRun: false, force: false };
  t.equal(no(buildOffer(active, guests(), 'nosuch', undefined, opts)), 'domain: LDom nosuch does not exist');
  t.equal(no(buildOffer(active, guests(), 'primary', undefined, opts)), 'primary: The control domain primary cannot be migrated');
  t.equal(
    no(buildOffer(active, guests('openboot'), 'ldg1', undefined, opts)),
    "run-state: Migration is not supported while the domain ldg1 is in the 'OpenBoot Running' state",
  );
  t.equal(no(buildOffer(active, guests('kmdb'), 'ldg1', undefined, opts)), "run-state: Migration is not supported while the domain ldg1 is in the 'Solaris debugging' state");
  t.equal(
    no(buildOffer(active, guests('solaris', 's10u8'), 'ldg1', undefined, opts)),
    'os: Live migration of LDom ldg1 is not supported: its OS release s10u8 is older than Solaris 10 9/10 (s10u9); stop the domain to migrate it cold',
  );
  t.equal(no(buildOffer(active, guests('solaris', 's10u9'), 'ldg1', undefined, opts)), 'ok', 'Solaris 10 9/10 migrates live');
  t.equal(no(buildOffer(active, { guest: () => undefined }, 'ldg1', undefined, opts)), 'guest: LDom ldg1 is active but its guest is not running on this machine');
  t.equal(no(buildOffer(bound, guests('openboot', 's10u8'), 'ldg1', undefined, opts)), 'ok', 'a bound domain has no guest to be in OpenBoot or too old');

  // A domain with an SR-IOV virtual function, also at the ok prompt: physical I/O is reported first.
  const io = await model('host-io');
  await io.addVcc('primary-vcc0', 'primary', 5000, 5100);
  const [vf] = await io.createVf('/SYS/MB/NET0/IOVNET.PF0', 1, []);
  await io.addDomain('ldg1', {}, { vcpus: 8, memory: 2 * GiB, io: [vf!] });
  await io.bindDomain('ldg1');
  await io.startDomain('ldg1');
  t.equal(
    no(buildOffer(io, guests('openboot'), 'ldg1', undefined, opts)),
    `physical-io: LDom ldg1 has direct access to the physical I/O device ${vf}: a domain with PCIe buses, PCIe endpoints or SR-IOV virtual functions cannot be migrated`,
  );
});

t.test('an active domain passes on a matching target: whole cores, the same real addresses, crypto, a console port', async (t) => {
  const tgt = await target();
  const offer = offerOf(active);
  const r = checkOffer(tgt, offer);
  if (!r.ok) return t.fail(r.reason);
  const plan = r.plan;
  t.equal(plan.name, 'ldg1');
  t.equal(plan.state, 'active');
  t.same(plan.strands, [8, 9, 10, 11, 12, 13, 14, 15], 'the first free whole core (the primary holds core 0)');
  const src = active.domain('ldg1')!.bindings!.memory;
  t.same(plan.memory.map((b) => [b.ra, b.size]), src.map((b) => [b.ra, b.size]), 'same real addresses and sizes as on the source');
  const free = freeMemory(tgt.machine, tgt.snapshot);
  for (const b of plan.memory) t.ok(free.some((f) => b.pa >= f.pa && b.pa + b.size <= f.pa + f.size), `block at PA 0x${b.pa.toString(16)} lies in free memory of the target`);
  t.same(plan.mau, [1], 'the crypto unit of the planned core');
  t.equal(plan.mauShortfall, 0);
  t.same([plan.consoleService, plan.consolePort], ['primary-vcc0', active.domain('ldg1')!.bindings!.consolePort], 'the source\'s port, free here too');
  t.same(planBindings(plan), { strands: plan.strands, memory: plan.memory, mau: plan.mau, consolePort: plan.consolePort, consoleService: 'primary-vcc0' });
  t.ok(plan.strands.every((s) => freeStrands(tgt.machine, tgt.snapshot).includes(s)), 'the planned strands are free');
  t.equal(tgt.snapshot.domains.length, 1 + 0, 'checking reserved nothing');
});

t.test('software: protocol, manager versions, firmware on either side', async (t) => {
  const tgt = await target();
  const offer = offerOf(active);
  t.equal(
    reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, protocol: MIGRATION_PROTOCOL + 1 } })),
    `software: Source machine host-a speaks migration protocol version ${MIGRATION_PROTOCOL + 1}, target machine host-b version ${MIGRATION_PROTOCOL}: the versions are not compatible`,
  );
  t.match(reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, managerVersion: '1.0' } })), /^software: Logical Domains Manager 1\.0 on source machine host-a and 2\.1 on target machine host-b are not compatible/);
  t.match(reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, managerVersion: '4.0' } })), /^software: Logical Domains Manager 4\.0 .* not compatible/, 'two major versions apart');
  t.equal(reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, managerVersion: '3.6' } })), 'ok', 'one major version apart');
  t.equal(
    reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, firmware: '6.7.4' } })),
    'software: System firmware 6.7.4 on source machine host-a does not support domain migration (7.0 or later is needed)',
  );
  const old = await target({ firmware: '6.3.1' });
  t.equal(reason(checkOffer(old, offer)), 'software: System firmware 6.3.1 on target machine host-b does not support domain migration (7.0 or later is needed)');
});

t.test('name and limit: a taken or invalid name, a full target; rename passes', async (t) => {
  const tgt = await target();
  await tgt.addDomain('ldg1', own(1));
  t.equal(reason(checkOffer(tgt, offerOf(active))), 'name: LDom ldg1 already exists on target machine host-b: give the domain another name there (target-host:new-name)');
  t.equal(reason(checkOffer(tgt, offerOf(active, { target: 'ldg2' }))), 'ok', 'migrate-domain ldg1 host-b:ldg2');
  t.equal(reason(checkOffer(tgt, offerOf(inactive))), reason(checkOffer(tgt, offerOf(active))), 'an inactive domain too');
  t.equal(reason(checkOffer(tgt, offerOf(active, { target: '9lives' }))), 'name: Invalid domain name on the target: 9lives');
  const full = await target({ maxDomains: 1 });
  t.equal(reason(checkOffer(full, offerOf(inactive))), 'limit: Target machine host-b already has 1 domains, the most it allows (the primary included)');
});

t.test('CPU type: differs for an active domain unless generic, migration-class1 on both, or -f; a bound domain may differ', async (t) => {
  const t5 = await target({ cpu: { type: 'SPARC-T5', frequencyMHz: 3600 } });
  t.equal(
    reason(checkOffer(t5, offerOf(active))),
    'cpu-type: The CPU of target machine host-b (SPARC-T5 at 3600 MHz) differs from that of source machine host-a (SPARC-T4 at 2848 MHz): live migration of LDom ldg1 needs cpu-arch=generic (set while the domain is inactive) or -f',
  );
  const slower = await target({ cpu: { frequencyMHz: 2500 } });
  t.match(reason(checkOffer(slower, offerOf(active))), /^cpu-type: .*\(SPARC-T4 at 2500 MHz\) differs/, 'the same type at another frequency');
  t.equal(reason(checkOffer(t5, offerOf(active, { force: true }))), 'ok', '-f');
  t.equal(reason(checkOffer(t5, offerOf(bound))), 'ok', 'cold migration: the CPU type may differ');
  t.equal(reason(checkOffer(t5, offerOf(await source('active', { cpuArch: 'generic' })))), 'ok', 'cpu-arch=generic');
  const class1 = await source('active', { cpuArch: 'migration-class1' });
  t.equal(reason(checkOffer(t5, offerOf(class1))), 'ok', 'migration-class1, T4 to T5');
  const t3 = await target({ cpu: { type: 'SPARC-T3', frequencyMHz: 1650 } });
  t.equal(
    reason(checkOffer(t3, offerOf(class1, { force: true }))),
    'cpu-type: LDom ldg1 has cpu-arch=migration-class1, which the SPARC-T3 CPU of machine host-b does not support (SPARC T4 or later is needed)',
  );
  t.same(['SPARC-T3', 'SPARC-T4', 'SPARC-M5', 'SPARC-M7', 'SPARC-S7', 'SPARC-T10'].map(supportsMigrationClass1), [false, true, true, true, true, true]);
});

t.test('CPUs: an active domain needs free whole cores, a bound one free strands', async (t) => {
  // Two cores: the primary holds strands 0-3, other0 strands 4-9 (partly used cores first): 6 strands free, no whole core.
  const tgt = await target({ cpu: { cores: 2 }, primary: { vcpus: 4, memory: '4G' } });
  await tgt.addDomain('other0', own(1), { vcpus: 6, memory: 1 * GiB });
  await tgt.bindDomain('other0');
  t.equal(freeStrands(tgt.machine, tgt.snapshot).length, 6);
  const small = await source('active', { vcpus: 4 });
  t.equal(reason(checkOffer(tgt, offerOf(small))), 'cpu: Not enough free whole cores on target machine host-b for the 4 virtual CPUs of LDom ldg1: 1 needed, 0 free');
  const smallBound = await source('bound', { vcpus: 4 });
  const r = checkOffer(tgt, offerOf(smallBound));
  t.equal(reason(r), 'ok', 'a bound domain takes strands of partly used cores');
  if (r.ok) t.same(r.plan.strands, [10, 11, 12, 13]);
  t.equal(reason(checkOffer(tgt, offerOf(bound))), 'cpu: Not enough free CPUs on target machine host-b for LDom ldg1: 8 needed, 6 free');
  const wide = await source('active', { vcpus: 12 });
  const roomy = await target({ cpu: { cores: 2 } });
  t.equal(reason(checkOffer(roomy, offerOf(wide))), 'cpu: Not enough free whole cores on target machine host-b for the 12 virtual CPUs of LDom ldg1: 2 needed, 1 free');
  t.equal(reason(checkOffer(tgt, offerOf(inactive))), 'ok', 'an inactive domain is not checked for resources');
});

t.test('memory: not enough in total, and enough in total but too fragmented for the same blocks', async (t) => {
  const tight = await target({ memory: [{ pa: '0x8000000', size: '8G' }] });
  t.equal(reason(checkOffer(tight, offerOf(active))), 'memory: Not enough free memory on target machine host-b for LDom ldg1: 6G needed, 4G free');

  // 12G free in three 4G ranges (the primary holds the first bank): the source's one 6G block fits in none of them.
  const fragmented = await target({
    memory: [
      { pa: '0x8000000', size: '4G' },
      { pa: '0x400000000', size: '4G' },
      { pa: '0x800000000', size: '4G' },
      { pa: '0xc00000000', size: '4G' },
    ],
  });
  t.same(freeMemory(fragmented.machine, fragmented.snapshot).map((r) => r.size / GiB), [4, 4, 4], 'three free ranges of 4G');
  const block = active.domain('ldg1')!.bindings!.memory;
  t.same(block, [{ ra: 0x8000000, pa: 0x108000000, size: 6 * GiB }], 'the source holds one 6G block (after the primary\'s 4G)');
  t.equal(
    reason(checkOffer(fragmented, offerOf(active))),
    'memory: Free memory layout and congruency requirements prevent binding the memory block with PA 0x108000000, RA 0x8000000, and size 6G',
  );
  t.equal(reason(checkOffer(fragmented, offerOf(bound))), reason(checkOffer(fragmented, offerOf(active))), 'a bound domain keeps its layout too');
  t.equal(reason(checkOffer(fragmented, offerOf(inactive))), 'ok', 'an inactive domain holds no memory');

  // A source whose 6G is two blocks (4G + 2G) fits there, at the same real addresses.
  const split = await model('host-a', { memory: [{ pa: '0x8000000', size: '8G' }, { pa: '0x400000000', size: '2G' }] });
  await services(split, { vswMac: '00:14:4f:fa:00:01' });
  await split.addDomain('ldg1', {}, { vcpus: 8, memory: 6 * GiB, vdisks: [{ name: 'disk0', volume: 'vol1', service: 'primary-vds0' }] });
  await split.bindDomain('ldg1');
  const blocks = split.domain('ldg1')!.bindings!.memory;
  t.same(blocks.map((b) => [b.ra, b.size / GiB]), [[0x8000000, 4], [0x8000000 + 4 * GiB, 2]]);
  const r = checkOffer(fragmented, offerOf(split));
  if (!r.ok) return t.fail(r.reason);
  t.same(r.plan.memory.map((b) => [b.ra, b.size]), blocks.map((b) => [b.ra, b.size]), 'same real addresses and sizes');
  t.ok(r.plan.memory.every((b) => b.pa >= 0x400000000), 'placed in the free ranges of the target (its own physical addresses)');
});

t.test('placeBlocks: exact placement where best fit alone fails; the failure names the source block', async (t) => {
  const U = MEMORY_UNIT;
  const free = [
    { pa: 0x10000000, size: 5 * U },
    { pa: 0x100000000, size: 4 * U },
  ];
  // Best fit puts 3 units in the 4-unit range, then cannot place the last 2: 3+2 | 2+2 does fit.
  const blocks = [
    { ra: 0x8000000, pa: 0x90000000, size: 3 * U },
    { ra: 0x8000000 + 3 * U, pa: 0xa0000000, size: 2 * U },
    { ra: 0x8000000 + 5 * U, pa: 0xb0000000, size: 2 * U },
    { ra: 0x8000000 + 7 * U, pa: 0xc0000000, size: 2 * U },
  ];
  const r = placeBlocks(free, blocks);
  if (!r.ok) return t.fail('not placed');
  t.same(r.blocks.map((b) => [b.ra, b.size]), blocks.map((b) => [b.ra, b.size]));
  const ends = r.blocks.map((b) => [b.pa, b.pa + b.size] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ends.length; i++) t.ok(ends[i]![0] >= ends[i - 1]![1], 'blocks do not overlap');
  for (const [s, e] of ends) t.ok(free.some((f) => s >= f.pa && e <= f.pa + f.size), 'each block inside one free range');
  const no = placeBlocks(free, [...blocks, { ra: 0x8000000 + 9 * U, pa: 0xd0000000, size: 1 * U }, { ra: 0x8000000 + 10 * U, pa: 0xe0000000, size: 1 * U }]);
  t.same(no, { ok: false, block: { ra: 0x8000000 + 7 * U, pa: 0xc0000000, size: 2 * U } }, 'more than the ranges hold');
});

t.test('physical I/O in an offer from another source is refused by the target too', async (t) => {
  const tgt = await target();
  const offer = offerOf(inactive);
  offer.domain.io = ['pci@500'];
  t.equal(
    reason(checkOffer(tgt, offer)),
    'physical-io: LDom ldg1 has direct access to the physical I/O device pci@500: a domain with PCIe buses, PCIe endpoints or SR-IOV virtual functions cannot be migrated',
  );
});

t.test('virtual disks: the back end must exist; an active domain\'s options and mpgroup must match', async (t) => {
  const noVds = await target({}, { vds: false });
  t.equal(reason(checkOffer(noVds, offerOf(active))), 'vdisk: Virtual disk back end vol1@primary-vds0 of disk disk0 of LDom ldg1 does not exist on target machine host-b');
  t.equal(reason(checkOffer(noVds, offerOf(inactive))), 'ok', 'not checked for an inactive domain');
  const ro = await target({}, { options: ['ro'] });
  t.equal(
    reason(checkOffer(ro, offerOf(active))),
    'vdisk: Virtual disk back end vol1@primary-vds0 has options none on the source and ro on target machine host-b: they must be the same for a live migration',
  );
  t.equal(reason(checkOffer(ro, offerOf(bound))), 'ok', 'not compared for a bound domain');
  const multi = await target({}, { options: ['slice', 'ro'] });
  t.equal(reason(checkOffer(multi, offerOf(await source('active', { options: ['ro', 'slice'] })))), 'ok', 'options compared as a set');
  const mp = await target({}, { mpgroup: 'mp1' });
  t.equal(
    reason(checkOffer(mp, offerOf(active))),
    'vdisk: Virtual disk back end vol1@primary-vds0 is in mpgroup none on the source and mp1 on target machine host-b: they must be the same for a live migration',
  );
});

t.test('virtual networks: the vswitch must exist; MAC addresses must be free on the target', async (t) => {
  const noVsw = await target({}, { vsw: false });
  t.equal(reason(checkOffer(noVsw, offerOf(active))), 'vnet: Virtual switch primary-vsw0 needed by network vnet0 of LDom ldg1 does not exist on target machine host-b');
  const src = active.domain('ldg1')!;
  const taken = await target();
  await taken.addDomain('other', own(1), {});
  await taken.addVnet('other', 'vnet9', 'primary-vsw0', { mac: src.vnets[0]!.mac.toUpperCase() });
  t.equal(reason(checkOffer(taken, offerOf(active))), `vnet: MAC address ${src.vnets[0]!.mac} of network vnet0 of LDom ldg1 is already in use on target machine host-b`);
  t.equal(reason(checkOffer(taken, offerOf(inactive))), `vnet: MAC address ${src.vnets[0]!.mac} of network vnet0 of LDom ldg1 is already in use on target machine host-b`, 'an inactive domain\'s MAC addresses too');
  const noVswInactive = await target({}, { vsw: false });
  t.equal(reason(checkOffer(noVswInactive, offerOf(inactive))), 'ok', 'an inactive domain needs no vswitch');
});

t.test('identity: the guest keeps its UUID, host ID and MAC address, unused on the target in any state', async (t) => {
  const src = active.domain('ldg1')!;
  const byUuid = await target();
  await byUuid.addDomain('twin', { ...own(1), uuid: src.uuid });
  t.equal(reason(checkOffer(byUuid, offerOf(inactive))), `identity: UUID ${src.uuid} of LDom ldg1 is already used by LDom twin on target machine host-b`);
  const byHostid = await target();
  await byHostid.addDomain('twin', { mac: own(1).mac, hostid: src.hostid });
  t.equal(reason(checkOffer(byHostid, offerOf(active))), `identity: Host ID ${src.hostid} of LDom ldg1 is already used by LDom twin on target machine host-b`);
  const byMac = await target();
  await byMac.addDomain('twin', { hostid: own(1).hostid, mac: src.mac });
  t.equal(reason(checkOffer(byMac, offerOf(bound))), `identity: MAC address ${src.mac} of LDom ldg1 is already in use on target machine host-b`);
});

t.test('perf-counters: the global counters go to one domain at a time', async (t) => {
  const src = await source('inactive');
  await src.setDomain('ldg1', { perfCounters: 'global' });
  const tgt = await target();
  t.equal(reason(checkOffer(tgt, offerOf(src))), 'ok');
  await tgt.addDomain('counting', { ...own(1), perfCounters: 'global' });
  t.equal(reason(checkOffer(tgt, offerOf(src))), 'perf-counters: LDom ldg1 has the global performance counters, which LDom counting holds on target machine host-b: only one domain at a time may have them');
  t.equal(reason(checkOffer(tgt, offerOf(inactive))), 'ok', 'a domain without them');
});

t.test('console: a concentrator with a free port; another port when the source\'s is taken', async (t) => {
  const none = await target({}, { vcc: null });
  t.equal(reason(checkOffer(none, offerOf(active))), 'console: No virtual console concentrator on target machine host-b has a free port for LDom ldg1 (add-vconscon, or widen a port range)');
  t.equal(reason(checkOffer(none, offerOf(inactive))), 'ok');
  const one = await target({}, { vcc: [5000, 5000] });
  t.equal(reason(checkOffer(one, offerOf(active))), 'ok', 'one free port');
  await one.addDomain('other', own(1), { vcpus: 1, memory: GiB });
  await one.bindDomain('other');
  t.equal(reason(checkOffer(one, offerOf(active))), 'console: No virtual console concentrator on target machine host-b has a free port for LDom ldg1 (add-vconscon, or widen a port range)', 'its one port taken');
  const busy = await target({}, { vcc: [6000, 6010] });
  await busy.addDomain('other', own(1), { vcpus: 1, memory: GiB, console: { port: 6000 } });
  await busy.bindDomain('other');
  const r = checkOffer(busy, offerOf(active));
  if (r.ok) t.same([r.plan.consoleService, r.plan.consolePort], ['primary-vcc0', 6001], 'the lowest free port');
  else t.fail(r.reason);
});

t.test('crypto units: a shortfall on the target is no failure', async (t) => {
  const none = await target({ cpu: { cryptoUnitsPerCore: 0 } });
  const r = checkOffer(none, offerOf(active));
  if (!r.ok) return t.fail(r.reason);
  t.same(r.plan.mau, []);
  t.equal(r.plan.mauShortfall, 1);
});

t.test('delayed reconfiguration on either machine refuses, in every state', async (t) => {
  const tgt = await target();
  const offer = offerOf(inactive);
  t.equal(reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, delayedReconf: true } })), 'reconf: Migration is not supported while a delayed reconfiguration is pending on the source machine host-a');
  const src = await source('bound');
  await src.setMemory('primary', 'set', 2 * GiB);
  t.equal(offerOf(src).machine.delayedReconf, true, 'the source\'s pending reconfiguration goes in the offer');
  await tgt.setMemory('primary', 'set', 2 * GiB);
  t.equal(reason(checkOffer(tgt, offer)), 'reconf: Migration is not supported while a delayed reconfiguration is pending on the target machine host-b');
});

t.test('elastic power policy on either machine refuses a live migration', async (t) => {
  const offer = offerOf(active);
  const tgt = await target();
  t.equal(reason(checkOffer(tgt, { ...offer, machine: { ...offer.machine, powerPolicy: 'elastic' } })), 'power: Migration is not supported while the elastic power management policy is in effect on the source machine host-a');
  const elastic = await target({ powerPolicy: 'elastic' });
  t.equal(reason(checkOffer(elastic, offer)), 'power: Migration is not supported while the elastic power management policy is in effect on the target machine host-b');
  t.equal(reason(checkOffer(elastic, offerOf(bound))), 'ok', 'a cold migration runs no guest');
});

t.test('the guest\'s state as the offer tells it: OpenBoot, the debugger, an old OS, a missing guest', async (t) => {
  const tgt = await target();
  const offer = offerOf(active);
  t.equal(reason(checkOffer(tgt, { ...offer, guest: { ...offer.guest!, runState: 'openboot' } })), "run-state: Migration is not supported while the domain ldg1 is in the 'OpenBoot Running' state");
  t.equal(reason(checkOffer(tgt, { ...offer, guest: { ...offer.guest!, runState: 'kmdb' } })), "run-state: Migration is not supported while the domain ldg1 is in the 'Solaris debugging' state");
  t.match(reason(checkOffer(tgt, { ...offer, guest: { ...offer.guest!, os: 's10u5' } })), /^os: Live migration of LDom ldg1 is not supported: its OS release s10u5/);
  const { guest: _, ...without } = offer;
  t.equal(reason(checkOffer(tgt, without)), 'offer: The source sent no guest state for LDom ldg1: the migration offer is incomplete');
});

t.test('the first failing check is the one reported', async (t) => {
  // No vswitch and a delayed reconfiguration: the vnet check comes first.
  const tgt = await target({}, { vsw: false });
  await tgt.setMemory('primary', 'set', 2 * GiB);
  t.match(reason(checkOffer(tgt, offerOf(active))), /^vnet: /);
  t.match(reason(checkOffer(tgt, offerOf(inactive))), /^reconf: /, 'an inactive domain skips the virtual I/O check');
  // Another CPU, too little memory, a taken name and an old protocol: software first, then name, then CPU type.
  const poor = await target({ cpu: { type: 'SPARC-T5' }, memory: [{ pa: '0x8000000', size: '8G' }] });
  await poor.addDomain('ldg1', own(1));
  const offer = offerOf(active);
  t.match(reason(checkOffer(poor, { ...offer, machine: { ...offer.machine, protocol: 99 } })), /^software: /);
  t.match(reason(checkOffer(poor, offer)), /^name: /);
  t.match(reason(checkOffer(poor, { ...offer, targetName: 'ldg2' })), /^cpu-type: /);
  t.match(reason(checkOffer(poor, { ...offer, targetName: 'ldg2', force: true })), /^memory: /);
});

t.test('the summary line: failed, or would fail if attempted for a dry run', async (t) => {
  const noVsw = await target({}, { vsw: false });
  const dry = checkOffer(noVsw, offerOf(active, { dryRun: true }));
  if (dry.ok) return t.fail('passed');
  t.same(failureLines('ldg1', dry, true), [
    'Virtual switch primary-vsw0 needed by network vnet0 of LDom ldg1 does not exist on target machine host-b',
    'Domain Migration of LDom ldg1 would fail if attempted',
  ]);
  t.same(failureLines('ldg1', dry, false)[1], 'Domain Migration of LDom ldg1 failed');
  t.equal(migrationMessages.wouldFail('x'), 'Domain Migration of LDom x would fail if attempted');
});

t.test('the plan is what the model reserves: the received domain gets exactly its bindings', async (t) => {
  const tgt = await target();
  const offer = offerOf(active);
  const r = checkOffer(tgt, offer);
  if (!r.ok) return t.fail(r.reason);
  await tgt.migrations.reserveTarget({ domain: offer.domain, name: r.plan.name, state: 'bound', plan: r.plan, peer: 'host-a', id: 'm1' });
  const d = tgt.domain('ldg1')!;
  t.same(d.bindings, planBindings(r.plan));
  t.equal(tgt.flags(d)[5], 't', 'the target of a migration');
  t.match(reason(checkOffer(tgt, offer)), /^name: /, 'a second offer finds the name taken');
});
