// Migration records in the domain model (agent/model/migrations.ts): each change and
// refusal, a reservation with exact real and physical addresses, monotonic progress
// saved at phase changes only, what a restarted model settles, the flags and keys
// list-domain shows over a real session, and the progress event a subscriber receives.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../agent/log.ts';
import { toLdmEvent } from '../agent/manager/events.ts';
import { freeMemory, freeStrands } from '../agent/model/allocate.ts';
import { Ldm, ModelError, type GuestHost, type ModelEvent } from '../agent/model/ldm.ts';
import { loadMachine } from '../agent/model/machine.ts';
import type { ReceivePlan, TargetReservation } from '../agent/model/migrations.ts';
import { StateStore } from '../agent/model/store.ts';
import type { DomainConfig, LdmState } from '../agent/model/types.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent, stateDirs } from './helpers/agent.ts';
import { cpu, data, memory, request, variable } from './helpers/requests.ts';
import { messages, ok } from './helpers/session.ts';

const G = 2 ** 30;
const machine = loadMachine(undefined, 'test-host');
const freshDir = stateDirs(t, 'ldm-migration-');

/** Guests that only record what the model asks of them. */
function recordingGuests() {
  const started: string[] = [];
  const running = new Set<string>();
  const guests: GuestHost = {
    start: (d) => void (started.push(d.name), running.add(d.name)),
    stop: (name) => void running.delete(name),
    status: (name) => (running.has(name) ? 'solaris' : undefined),
  };
  return { guests, started, running };
}

async function open(dir: string, lines: string[] = []) {
  const events: ModelEvent[] = [];
  const g = recordingGuests();
  const log = createLogger('debug', 'ldm-agent', (l) => lines.push(l)).child('model');
  const ldm = await Ldm.open(machine, new StateStore(dir), (ev) => events.push(ev), g.guests, log);
  return { ldm, events, ...g, lines, dir };
}

/** A model with guest ldg1 (2 vCPUs, 2G), bound, and ldg2 inactive. */
async function withGuests(dir = freshDir()) {
  const m = await open(dir);
  await m.ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  await m.ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 2 * G });
  await m.ldm.addDomain('ldg2', {}, { vcpus: 2, memory: 1 * G });
  await m.ldm.bindDomain('ldg1');
  m.events.length = 0;
  return m;
}

const saved = (dir: string): LdmState => JSON.parse(readFileSync(join(dir, 'domains.json'), 'utf8'));
const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof ModelError) return err.message;
    throw err;
  }
  throw new Error('expected a refusal');
};
const progressEvents = (events: ModelEvent[]) => events.filter((e) => e.class === 'progress').map((e) => e.class === 'progress' && `${e.domain} ${e.progress} ${e.status} ${e.source}`);

t.test('markSource: flag s, saved; refused for a domain already migrating, the primary, a service domain, during a delayed reconfiguration', async (t) => {
  const { ldm, events, dir } = await withGuests();
  await ldm.migrations.markSource('ldg1', 'peer-host:6483', 'm-1');
  t.equal(ldm.flags(ldm.domain('ldg1')!), '-----s', 'column 6 is s');
  t.match(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration, { role: 'source', peer: 'peer-host:6483', id: 'm-1', phase: 'prepare', progress: 0 });
  t.same(progressEvents(events), ['ldg1 0 ongoing test-host']);
  t.match(await refusal(ldm.migrations.markSource('ldg1', 'other', 'm-2')), 'A migration of LDom ldg1 is already in progress (with peer-host:6483)');
  t.match(await refusal(ldm.migrations.markSource('primary', 'other', 'm-3')), 'control domain (primary) cannot be migrated');
  t.match(await refusal(ldm.migrations.markSource('ldg9', 'other', 'm-3')), 'LDom ldg9 does not exist');

  await ldm.addVds('ldg2-vds0', 'ldg2');
  t.match(await refusal(ldm.migrations.markSource('ldg2', 'other', 'm-4')), 'LDom ldg2 provides virtual I/O services (ldg2-vds0)');
  await ldm.removeVds('ldg2-vds0');

  const m2 = await withGuests();
  await m2.ldm.setMemory('primary', 'set', 8 * G);
  t.match(await refusal(m2.ldm.migrations.markSource('ldg1', 'peer', 'm-5')), 'delayed reconfiguration of the primary domain is pending');
  t.equal(m2.ldm.domain('ldg1')!.migration, undefined, 'nothing recorded');
});

t.test('a migrating domain refuses every change with one message; bind and stop of other domains wait for the migration', async (t) => {
  const { ldm } = await withGuests();
  await ldm.migrations.markSource('ldg1', 'peer-host', 'm-1');
  const said = 'LDom ldg1 is being migrated to peer-host: it cannot be changed until the migration ends';
  const changes: [string, () => Promise<unknown>][] = [
    ['set-vcpu', () => ldm.setVcpus('ldg1', 'set', 4, false)],
    ['add-memory', () => ldm.setMemory('ldg1', 'add', G)],
    ['set-variable', () => ldm.setVariables('ldg1', 'set', [['auto-boot?', 'false']])],
    ['set-domain', () => ldm.setDomain('ldg1', { failurePolicy: 'reset' })],
    ['start-domain', () => ldm.startDomain('ldg1')],
    ['unbind-domain', () => ldm.unbindDomain('ldg1')],
    ['remove-domain', () => ldm.removeDomain(['ldg1'])],
    ['remove-domain -a', () => ldm.removeDomain([], true)],
    ['set-mau', () => ldm.setMau('ldg1', 'set', 1)],
  ];
  for (const [what, change] of changes) t.equal(await refusal(change()), said, what);
  t.equal(ldm.domain('ldg1')!.vcpus, 2, 'nothing changed');

  t.equal(await refusal(ldm.bindDomain('ldg2')), 'LDom ldg2 cannot be bound while LDom ldg1 is being migrated');
  await ldm.setVcpus('ldg2', 'set', 3, false);
  t.equal(ldm.domain('ldg2')!.vcpus, 3, 'other changes to other domains go on');
  await ldm.migrations.clearSource('ldg1');
  await ldm.bindDomain('ldg2');
  await ldm.startDomain('ldg2');
  await ldm.migrations.markSource('ldg1', 'peer-host', 'm-2');
  t.equal(await refusal(ldm.stopDomain('ldg2')), 'LDom ldg2 cannot be stopped while LDom ldg1 is being migrated');
  await ldm.migrations.markError('ldg1');
  t.match(await refusal(ldm.setVcpus('ldg1', 'set', 4, false)), 'LDom ldg1 is in the migration error state');
  await ldm.stopDomain('ldg2');
  t.equal(ldm.domain('ldg2')!.state, 'bound', 'a source in the error state runs no migration: others may stop');
});

t.test('setProgress: never decreases, clamped, one event per whole percent, saved at phase changes only', async (t) => {
  const { ldm, events, dir } = await withGuests();
  await ldm.migrations.markSource('ldg1', 'peer', 'm-1');
  events.length = 0;
  await ldm.migrations.setProgress('ldg1', 'precopy', 10);
  t.match(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration, { phase: 'precopy', progress: 10 }, 'a phase change is saved');
  for (let p = 10; p <= 40; p += 0.25) await ldm.migrations.setProgress('ldg1', 'precopy', p);
  await ldm.migrations.setProgress('ldg1', 'precopy', 25);
  await ldm.migrations.setProgress('ldg1', 'precopy', Number.NaN);
  t.equal(ldm.migrations.view('ldg1')!.progress, 40, 'never backwards');
  t.match(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration, { phase: 'precopy', progress: 10 }, 'progress within a phase is not written');
  t.same(
    progressEvents(events).map((e) => Number((e as string).split(' ')[1])),
    Array.from({ length: 31 }, (_, i) => 10 + i),
    'events at 10, 11 ... 40: each whole percent once',
  );
  await ldm.migrations.setProgress('ldg1', 'stop-copy', 250);
  t.equal(ldm.migrations.view('ldg1')!.progress, 100, 'clamped to 100');
  t.match(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration, { phase: 'stop-copy', progress: 100 });
  t.match(await refusal(ldm.migrations.setProgress('ldg2', 'precopy', 1)), 'No migration of LDom ldg2 is in progress');
});

t.test('markError, clearSource, completeSource', async (t) => {
  const { ldm, events, dir } = await withGuests();
  const strands = ldm.domain('ldg1')!.bindings!.strands;
  await ldm.migrations.markSource('ldg1', 'peer', 'm-1');
  await ldm.migrations.setProgress('ldg1', 'handoff', 97);
  await ldm.migrations.markError('ldg1');
  t.equal(ldm.flags(ldm.domain('ldg1')!), '-----e');
  t.equal(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration!.error, true, 'the error state is saved');
  await ldm.migrations.setProgress('ldg1', 'handoff', 99);
  t.equal(ldm.migrations.view('ldg1')!.progress, 97, 'progress is frozen in the error state');
  t.match(await refusal(ldm.migrations.markError('ldg2')), 'LDom ldg2 is not the source of a migration');

  events.length = 0;
  await ldm.migrations.clearSource('ldg1');
  t.equal(ldm.domain('ldg1')!.migration, undefined);
  t.equal(ldm.flags(ldm.domain('ldg1')!), '------', 'runs on unchanged');
  t.same(ldm.domain('ldg1')!.bindings!.strands, strands, 'with its resources');
  t.same(progressEvents(events), ['ldg1 97 failed test-host']);
  t.equal(saved(dir).domains.find((d) => d.name === 'ldg1')!.migration, undefined);

  await ldm.setDomain('ldg2', { master: 'ldg1' });
  await ldm.migrations.markSource('ldg1', 'peer', 'm-2');
  events.length = 0;
  await ldm.migrations.completeSource('ldg1');
  t.equal(ldm.domain('ldg1'), undefined, 'the source domain is gone');
  t.same(ldm.domain('ldg2')!.master, [], 'and no longer a master');
  const free = new Set(freeStrands(machine, ldm.snapshot as LdmState));
  t.ok(strands.every((x) => free.has(x)), 'its strands are free');
  t.same(progressEvents(events), ['ldg1 100 done test-host']);
  t.ok(events.some((e) => e.class === 'domain' && e.action === 'migrate-domain' && e.domain === 'ldg1'), 'and the domain event migrate-domain');
  t.match(await refusal(ldm.migrations.completeSource('ldg2')), 'LDom ldg2 is not the source of a migration');
});

/** ldg1 as a source machine would describe it: 4 vCPUs, 2G in two blocks at RA 0x8000000 and 0x48000000. */
function offered(over: Partial<DomainConfig> = {}): DomainConfig {
  return {
    name: 'ldg1',
    uuid: '11111111-2222-8333-8444-555555555555',
    hostid: '0x84f8aaaa',
    mac: '00:14:4f:fa:00:01',
    state: 'bound',
    failurePolicy: 'ignore',
    master: ['elsewhere'],
    cpuArch: 'native',
    perfCounters: 'htstrand',
    extendedMapinSpace: 'off',
    rcAddPolicy: '',
    bootPolicy: 'warning',
    shutdownGroup: 15,
    maxCores: 'unlimited',
    vcpus: 4,
    wholeCores: 0,
    memory: 2 * G,
    mau: 1,
    io: [],
    vdisks: [],
    vnets: [],
    console: { port: 5000, service: 'source-vcc' },
    variables: [['sim-working-set', '8M']],
    bindings: { strands: [60, 61, 62, 63], memory: [{ ra: 0x8000000, pa: 0x900000000, size: G }, { ra: 0x48000000, pa: 0xa00000000, size: G }], mau: [7] },
    ...over,
  };
}

/** Two blocks far apart in physical memory, at the source's real addresses. */
const PLAN: ReceivePlan = {
  strands: [40, 41, 42, 43],
  memory: [
    { ra: 0x48000000, pa: 0x308000000, size: G },
    { ra: 0x8000000, pa: 0x808000000, size: G },
  ],
  mau: [5],
  consolePort: 5003,
  consoleService: 'primary-vcc0',
};
const reservation = (over: Partial<TargetReservation> = {}): TargetReservation => ({ domain: offered(), name: 'ldg1', state: 'active', plan: PLAN, peer: 'source-host', id: 'm-7', ...over });

t.test('reserveTarget: exactly the planned bindings, flag t, hidden from changes; completeTarget and abortTarget', async (t) => {
  const { ldm, events, dir, started } = await open(freshDir());
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  await ldm.migrations.reserveTarget(reservation());
  const d = ldm.domain('ldg1')!;
  t.equal(d.state, 'bound', 'a live guest is received bound');
  t.same(d.bindings, { strands: [40, 41, 42, 43], memory: [{ ra: 0x8000000, pa: 0x808000000, size: G }, { ra: 0x48000000, pa: 0x308000000, size: G }], mau: [5], consolePort: 5003, consoleService: 'primary-vcc0' }, 'RA and PA as planned');
  t.equal(ldm.flags(d), '-----t');
  t.same([d.uuid, d.hostid, d.mac], ['11111111-2222-8333-8444-555555555555', '0x84f8aaaa', '00:14:4f:fa:00:01'], 'the guest keeps its identity');
  t.same(d.master, [], 'masters that do not exist here are dropped');
  t.same(d.console, { service: 'primary-vcc0' }, 'the console names the concentrator here');
  t.same(d.variables, [['sim-working-set', '8M']], 'variables travel');
  t.match(saved(dir).domains.find((x) => x.name === 'ldg1')!.migration, { role: 'target', peer: 'source-host', id: 'm-7' });
  t.equal(await refusal(ldm.setVcpus('ldg1', 'add', 1, false)), 'LDom ldg1 is being migrated from source-host: it cannot be changed until the migration ends');
  t.equal(await refusal(ldm.addDomain('ldg1')), 'LDom ldg1 already exists');
  t.equal(await refusal(ldm.migrations.markSource('ldg1', 'x', 'y')), 'A migration of LDom ldg1 is already in progress (with source-host)');
  t.same(progressEvents(events).slice(-1), ['ldg1 0 ongoing test-host']);

  t.match(await refusal(ldm.migrations.completeTarget('ldg1', 'inactive')), 'LDom ldg1 received as bound cannot end the migration inactive');
  events.length = 0;
  await ldm.migrations.completeTarget('ldg1', 'active');
  t.equal(ldm.domain('ldg1')!.state, 'active');
  t.equal(ldm.flags(ldm.domain('ldg1')!), '-n----', 'an ordinary active domain');
  t.same(started, [], 'the model starts no guest: the migration resumed it');
  t.same(progressEvents(events), ['ldg1 100 done test-host']);
  t.ok(events.some((e) => e.class === 'domain' && e.action === 'migrate-domain'));
  await ldm.setVariables('ldg1', 'set', [['auto-boot?', 'false']]);
  t.pass('and it can be changed again');

  // An inactive domain arrives without bindings; an aborted one leaves nothing.
  await ldm.migrations.reserveTarget(reservation({ domain: offered({ uuid: '11111111-2222-8333-8444-555555555556', hostid: '0x84f8aaab', mac: '00:14:4f:fa:00:02', state: 'inactive', bindings: undefined }), name: 'ldg5', state: 'inactive', plan: undefined }));
  t.equal(ldm.domain('ldg5')!.bindings, undefined);
  await ldm.migrations.completeTarget('ldg5', 'inactive');
  t.equal(ldm.flags(ldm.domain('ldg5')!), '------');

  const before = JSON.stringify(freeMemory(machine, ldm.snapshot as LdmState));
  await ldm.migrations.reserveTarget(reservation({ domain: offered({ uuid: '11111111-2222-8333-8444-555555555557', hostid: '0x84f8aaac', mac: '00:14:4f:fa:00:03' }), name: 'ldg6', plan: { ...PLAN, strands: [48, 49, 50, 51], mau: [6], consolePort: 5004, memory: [{ ra: 0x8000000, pa: 0x408000000, size: 2 * G }] } }));
  t.not(JSON.stringify(freeMemory(machine, ldm.snapshot as LdmState)), before, 'reserved memory is not free');
  events.length = 0;
  await ldm.migrations.abortTarget('ldg6');
  t.equal(ldm.domain('ldg6'), undefined, 'removed');
  t.equal(JSON.stringify(freeMemory(machine, ldm.snapshot as LdmState)), before, 'its memory is free again');
  t.same(progressEvents(events), ['ldg6 0 failed test-host']);
  t.match(await refusal(ldm.migrations.abortTarget('ldg1')), 'LDom ldg1 is not the target of a migration');
});

t.test('reserveTarget refuses a resource taken since the checks, and a plan that does not fit the domain', async (t) => {
  const { ldm } = await open(freshDir());
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  await ldm.addDomain('local', {}, { vcpus: 2, memory: G, mau: 1, console: { port: 5003 } });
  await ldm.bindDomain('local');
  const local = ldm.domain('local')!.bindings!;
  // Free strands on the core of local's strands (and of its crypto unit).
  const sameCore = freeStrands(machine, ldm.snapshot as LdmState).filter((x) => Math.floor(x / 8) === Math.floor(local.strands[0]! / 8)).slice(0, 4);
  const cases: [string, Partial<TargetReservation>, string | RegExp][] = [
    ['a strand', { plan: { ...PLAN, strands: [local.strands[0]!, 41, 42, 43] } }, `Cannot reserve strand ${local.strands[0]} for LDom ldg1: it is no longer free`],
    ['memory', { plan: { ...PLAN, memory: [{ ra: 0x8000000, pa: local.memory[0]!.pa, size: G }, PLAN.memory[0]!] } }, /Cannot reserve the memory block with PA 0x[0-9a-f]+, RA 0x8000000 and size 1073741824 bytes for LDom ldg1: it is no longer free/],
    ['the primary\'s memory', { plan: { ...PLAN, memory: [{ ra: 0x8000000, pa: 0x8000000, size: G }, PLAN.memory[0]!] } }, /memory block with PA 0x8000000/],
    ['a crypto unit', { plan: { ...PLAN, strands: sameCore, mau: local.mau } }, `Cannot reserve crypto unit ${local.mau[0]} for LDom ldg1: it is no longer free`],
    ['a crypto unit off its cores', { plan: { ...PLAN, mau: [0] } }, 'crypto unit 0 is not on a core of its strands'],
    ['a console port', { plan: { ...PLAN, consolePort: local.consolePort } }, `Cannot reserve console port ${local.consolePort} of primary-vcc0 for LDom ldg1: it is no longer free`],
    ['too few strands', { plan: { ...PLAN, strands: [40, 41] } }, '2 strands planned for 4 virtual CPUs'],
    ['memory of another size', { plan: { ...PLAN, memory: [PLAN.memory[0]!] } }, '1073741824 bytes of memory planned for 2147483648'],
    ['overlapping physical blocks', { plan: { ...PLAN, memory: [{ ra: 0x8000000, pa: 0x308000000, size: G }, { ra: 0x48000000, pa: 0x308000000, size: G }] } }, 'memory blocks overlap at PA 0x308000000'],
    ['no plan', { plan: undefined }, 'no bindings given for a bound domain'],
    ['a name in use', { name: 'local' }, 'LDom local already exists'],
    ['a MAC address in use', { domain: offered({ mac: ldm.domain('local')!.mac }) }, `MAC address ${ldm.domain('local')!.mac}`],
    ['physical I/O', { domain: offered({ io: ['/SYS/MB/PCIE2'] }) }, 'physical I/O (/SYS/MB/PCIE2) cannot be migrated'],
  ];
  for (const [what, over, said] of cases) {
    const text = await refusal(ldm.migrations.reserveTarget(reservation(over)));
    if (typeof said === 'string') t.match(text, said, what);
    else t.match(text, said, what);
  }
  t.equal(ldm.snapshot.domains.length, 2, 'nothing was created');
  t.equal(sameCore.length, 4, '(the crypto case had strands to use)');
});

t.test('a restarted model settles what it finds: half-received domains removed, unfinished sources cleared, error states kept', async (t) => {
  const dir = freshDir();
  {
    const { ldm } = await open(dir);
    await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
    for (const name of ['run1', 'run2']) {
      await ldm.addDomain(name, {}, { vcpus: 2, memory: G });
      await ldm.bindDomain(name);
      await ldm.startDomain(name);
    }
    await ldm.migrations.markSource('run1', 'peer-a', 'm-1');
    await ldm.migrations.setProgress('run1', 'precopy', 30);
    await ldm.migrations.markSource('run2', 'peer-b', 'm-2');
    await ldm.migrations.markError('run2');
    await ldm.migrations.reserveTarget(reservation({ peer: 'peer-c', id: 'm-3' }));
  }
  const lines: string[] = [];
  const { ldm, started, events } = await open(dir, lines);
  const log = lines.join('\n');
  t.equal(ldm.domain('ldg1'), undefined, 'the half-received domain is gone');
  t.ok(new Set(freeStrands(machine, ldm.snapshot as LdmState)).has(40), 'with its resources');
  t.match(log, /half-received domain ldg1 \(migration m-3 from peer-c\) found at start: removed, its resources freed/);
  t.equal(ldm.domain('run1')!.migration, undefined, 'the source cut before its handoff is cleared');
  t.match(log, /migration m-1 of run1 to peer-a was cut short by a restart \(phase precopy, before the handoff\): cancelled/);
  t.same(started, ['run1'], 'it runs on (its guest restarted); the source in the error state is not started');
  t.ok(events.some((e) => e.class === 'domain' && e.action === 'domain-reset' && e.domain === 'run1'));
  t.equal(ldm.flags(ldm.domain('run2')!), '-n---e', 'the error state stays');
  t.match(log, /domain run2 is in the migration error state \(migration m-2 to peer-b\)/);
  t.same(saved(dir).domains.map((d) => [d.name, d.migration?.role ?? null]), [['primary', null], ['run1', null], ['run2', 'source']], 'and the file says the same');

  // Settled later (the target does not run it): the guest comes back here.
  await ldm.migrations.clearSource('run2');
  t.same(started, ['run1', 'run2'], 'an active domain without its guest is started again');
  t.equal(ldm.flags(ldm.domain('run2')!), '-n----');
});

t.test('the loader: old files (no record) load; a malformed record stops the start', async (t) => {
  const dir = freshDir();
  const { ldm } = await withGuests(dir);
  await ldm.migrations.markSource('ldg1', 'peer', 'm-1');
  const s = saved(dir);
  const record = s.domains.find((d) => d.name === 'ldg1')!.migration!;
  for (const d of s.domains) delete d.migration;
  writeFileSync(join(dir, 'domains.json'), JSON.stringify(s));
  const reopened = await open(dir);
  t.equal(reopened.ldm.domain('ldg1')!.state, 'bound', 'a file without records loads');

  const bad = (r: unknown) => {
    const copy = structuredClone(s) as unknown as { domains: Record<string, unknown>[] };
    copy.domains.find((d) => d['name'] === 'ldg1')!['migration'] = r;
    writeFileSync(join(dir, 'domains.json'), JSON.stringify(copy));
    return new StateStore(dir).load();
  };
  await t.rejects(bad({ ...record, role: 'sideways' }), /domain ldg1: its migration record is malformed/);
  await t.rejects(bad({ ...record, progress: 101 }), /its migration record is malformed/);
  await t.rejects(bad({ ...record, role: 'target', error: true }), /its migration record \(target\) does not match its state/);
});

t.test('over a real session: list-domain shows flags, operation, progress and peer; a reg-progress-events subscriber gets the events', async (t) => {
  const agent = await startTestAgent(t);
  const client = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
  const watcher = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
  t.teardown(() => Promise.all([client.close(), watcher.close()]));
  await agent.ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  const got: LdmDocument[] = [];
  watcher.onEvent((ev) => got.push(ev));
  t.ok(ok(await watcher.request(request('reg-progress-events'))));
  for (const [action, d] of [
    ['add-domain', data('ldg1')],
    ['add-vcpu', data('ldg1', cpu(2))],
    ['add-memory', data('ldg1', memory('1G'))],
    ['add-variable', data('ldg1', variable('sim-working-set', '8M'))],
    ['bind-domain', data('ldg1')],
    ['start-domain', data('ldg1')],
  ] as const) {
    const r = await client.request(request(action, d));
    t.ok(ok(r), action, { messages: messages(r) });
  }
  await agent.guests.hypervisor.guest('ldg1')!.whenFilled();
  await agent.ldm.migrations.markSource('ldg1', 'peer-host:6483', 'm-1');
  await agent.ldm.migrations.setProgress('ldg1', 'precopy', 42);

  const info = async () => {
    const r = await client.request(request('list-domain', data('ldg1')));
    const item = r.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items.find((i) => i.type === 'ldom_info')!;
    return Object.fromEntries(item.props);
  };
  t.match(await info(), { flags: '-n---s', operation: 'migration', progress: '42%', target: 'peer-host:6483', error: 'no', 'sim-workload': 'idle', 'sim-filled': String(8 * 2 ** 20) });
  const refused = await client.request(request('add-vcpu', data('ldg1', cpu(1))));
  t.same(messages(refused), ['LDom ldg1 is being migrated to peer-host:6483: it cannot be changed until the migration ends']);

  // Listing keys sent back (set-domain of another domain): read without a warning.
  const keys = { operation: 'migration', progress: '42%', target: 'h', source: 'g', error: 'no', 'sim-workload': 'idle', 'sim-filled': '1' };
  const back = await client.request(request('set-domain', data('primary', { type: 'ldom_info', props: { 'failure-policy': 'ignore', ...keys } })));
  t.ok(ok(back));
  t.same(back.commands[0]!.data[0]!.warning?.messages ?? [], [], 'no warning about output-only keys');
  await agent.ldm.migrations.markError('ldg1');
  t.match(await info(), { flags: '-n---e', error: 'yes' });
  await agent.ldm.migrations.clearSource('ldg1');
  const after = await info();
  t.equal(after['flags'], '-n----');
  t.notOk('operation' in after, 'no migration keys once it ended');

  // Events arrive in order (a request round trip flushes them).
  await watcher.request(request('list-domain', data('ldg1')));
  const events = got.map((ev) => {
    const item = ev.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!;
    return [ev.root, ev.commands[0]!.action, ev.commands[0]!.data[0]!.envelope!.contents[0]!.id, ...item.props.values()].join(' ');
  });
  t.same(events, [
    'LDM_event migrate-domain ldg1 0% ongoing test-host',
    'LDM_event migrate-domain ldg1 42% ongoing test-host',
    'LDM_event migrate-domain ldg1 42% failed test-host',
  ]);
});

t.test('the progress event as rendered: ldom_info with progress NN%, status and the reporting host', async (t) => {
  const ev = toLdmEvent({ class: 'progress', domain: 'ldg1', progress: 45, status: 'ongoing', source: 't4-a' });
  t.equal(ev.eventClass, 'progress');
  const example = readFileSync(new URL('../xml-examples/events/migration-progress.xml', import.meta.url), 'utf8');
  t.equal(`<?xml version="1.0" encoding="UTF-8"?>\n${ev.text()}`.trim(), example.trim(), 'xml-examples/events/migration-progress.xml is what the agent renders');
});
