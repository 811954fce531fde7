// The target side of a migration (agent/migration/target.ts) as a unit: a real model
// and simulated hypervisor on the target, a real source model and guest to build the
// offer and the pages from, and a scripted source (this test) on a loopback socket
// speaking the conversation (agent/migration/conversation.ts). Each hostile or
// out-of-order message ends the migration with nothing left on the target.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createLogger } from '../agent/log.ts';
import type { Guest } from '../agent/hypervisor/hypervisor.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { Guests } from '../agent/manager/guests.ts';
import { buildOffer } from '../agent/migration/checks.ts';
import { Conversation, parseTargetMessage, type SourceMessage, type TargetMessage } from '../agent/migration/conversation.ts';
import { digestOfGuest, RunningDigest } from '../agent/migration/digest.ts';
import type { MigrationOffer } from '../agent/migration/offer.ts';
import type { MigrationInfo } from '../agent/migration/stats.ts';
import { TargetMigration } from '../agent/migration/target.ts';
import { Ldm } from '../agent/model/ldm.ts';
import { DEFAULT_MACHINE_FILE, loadMachine } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import { stateDirs } from './helpers/agent.ts';

const G = 2 ** 30;
const M = 2 ** 20;
const freshDir = stateDirs(t, 'ldm-migration-target-');

async function model(name: string, hostid: string) {
  const dir = freshDir();
  const file = join(dir, 'machine.json');
  writeFileSync(file, JSON.stringify({ ...DEFAULT_MACHINE_FILE, hostname: name, hostid }));
  mkdirSync(join(dir, 'var'));
  const hypervisor = new SimHypervisor({ memoryBudget: 512 * M });
  const ldm = await Ldm.open(loadMachine(file), new StateStore(join(dir, 'var')), () => {}, new Guests(undefined, hypervisor));
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  t.teardown(() => hypervisor.close());
  return { ldm, hypervisor };
}

/** The source: ldg1 running with a 4 MiB random working set, filled. */
const source = await model('alpha', '0x84a10001');
await source.ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 1 * G, variables: [['sim-working-set', '4M'], ['sim-fill', 'random'], ['sim-dirty-rate', '0']] });
await source.ldm.bindDomain('ldg1');
await source.ldm.startDomain('ldg1');
const sourceGuest = source.hypervisor.guest('ldg1')!;
await sourceGuest.whenFilled();
sourceGuest.suspend();
const target = await model('beta', '0x84b20002');

function offer(over: Partial<MigrationOffer> = {}): MigrationOffer {
  const r = buildOffer(source.ldm, source.hypervisor, 'ldg1', undefined, { dryRun: false, force: false });
  if (!r.ok) throw new Error(r.reason);
  return { ...r.offer, ...over };
}

/** A target migration on one end of a loopback connection, the scripted source on the other. */
async function session(t: Test, idleMs = 5_000) {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const infos: MigrationInfo[] = [];
  const migration = new TargetMigration(
    { ldm: target.ldm, hypervisor: target.hypervisor, log: createLogger('error'), holds: new Set(), register: (i) => infos.push(i), settleAnswer: () => 'no', idleMs },
    await accepted,
    Buffer.alloc(0),
    'tester',
  );
  server.close();
  const conv = new Conversation(socket);
  t.teardown(() => conv.close());
  const answer = async (): Promise<TargetMessage> => parseTargetMessage(await conv.receive(5_000, 'answer', (w) => new Error(`no ${w}`)));
  const say = (m: SourceMessage | Record<string, unknown>) => conv.send(m as SourceMessage);
  const closed = new Promise<void>((resolve) => conv.onClose(() => resolve()));
  return { migration, conv, answer, say, closed, infos };
}

/** Nothing of ldg1 is left on the target: no domain, no guest. */
function clean(t: Test, what: string) {
  t.equal(target.ldm.domain('ldg1'), undefined, `${what}: no domain ldg1 on the target`);
  const g = target.hypervisor.guest('ldg1');
  t.ok(g === undefined || g.state === 'destroyed', `${what}: no guest ldg1 on the target`);
}

async function sendAll(conv: Conversation, guest: Guest, digest: RunningDigest) {
  for (const index of guest.touchedIndexes()) if (conv.encoder.addPage(guest, index, digest)) await conv.encoder.flush();
  await conv.encoder.flush();
}

t.test('a whole live migration: checked, prepared, pages, digest verified, resumed with the source memory', async (t) => {
  const s = await session(t);
  await s.say({ t: 'offer', id: 'm-1', offer: offer() });
  const checked = await s.answer();
  t.match(checked, { t: 'checked', ok: true }, 'the checks pass');
  await s.say({ t: 'prepare' });
  t.same(await s.answer(), { t: 'prepared' });
  t.equal(target.ldm.domain('ldg1')?.migration?.role, 'target', 'the receiving domain is reserved with flag t');
  const digest = new RunningDigest();
  await sendAll(s.conv, sourceGuest, digest);
  await s.say({ t: 'pass', n: 1 });
  t.same(await s.answer(), { t: 'passed', n: 1 }, 'the pass is acknowledged once written');
  await s.say({ t: 'final', digest: digest.hex, runtime: sourceGuest.runtime() });
  t.same(await s.answer(), { t: 'verified', digest: digest.hex }, 'the target holds exactly the pages sent');
  await s.say({ t: 'resume' });
  const resumed = await s.answer();
  t.equal(resumed.t, 'resumed');
  await s.migration.done;
  const d = target.ldm.domain('ldg1');
  t.equal(d?.state, 'active');
  t.equal(d?.migration, undefined, 'no migration record is left');
  const g = target.hypervisor.guest('ldg1')!;
  t.equal(g.state, 'running', 'the guest runs on the target');
  t.equal(await digestOfGuest(g), await digestOfGuest(sourceGuest), 'its memory is the source memory, page for page');
  t.equal(s.infos[0]?.status, 'completed');
  t.equal(s.infos[0]?.digest, digest.hex);
  // Put the target back as it was for the next tests.
  await target.ldm.stopDomain('ldg1');
  await target.ldm.unbindDomain('ldg1');
  await target.ldm.removeDomain(['ldg1']);
});

t.test('a message that is no message, one out of order, an unknown one: the channel closes, nothing is kept', async (t) => {
  for (const [what, msgs] of [
    ['not an object', [[1, 2, 3]]],
    ['unknown type', [{ t: 'launch' }]],
    ['prepare before the offer', [{ t: 'prepare' }]],
    ['an offer without a domain', [{ t: 'offer', id: 'x', offer: { machine: offer().machine, targetName: 'ldg1' } }]],
    ['resume before the memory', [{ t: 'offer', id: 'm-2', offer: offer() }, { t: 'prepare' }, { t: 'resume' }]],
    ['a digest that is not hex', [{ t: 'offer', id: 'm-3', offer: offer() }, { t: 'prepare' }, { t: 'final', digest: 'zz', runtime: sourceGuest.runtime() }]],
  ] as const) {
    const s = await session(t);
    for (const m of msgs) await s.say(m as Record<string, unknown>).catch(() => {});
    await s.closed;
    await s.migration.done;
    t.match(String(s.conv.closedBy?.message), /closed|failed/, `${what}: the target closed the channel`);
    clean(t, what);
  }
});

t.test('pages before the domain exists, and a page past the guest: refused, the received domain removed', async (t) => {
  const early = await session(t);
  early.conv.encoder.addPage(sourceGuest, sourceGuest.touchedIndexes()[0]!);
  await early.conv.encoder.flush();
  await early.closed;
  await early.migration.done;
  clean(t, 'pages before prepare');

  const s = await session(t);
  await s.say({ t: 'offer', id: 'm-4', offer: offer() });
  await s.answer();
  await s.say({ t: 'prepare' });
  await s.answer();
  t.ok(target.hypervisor.guest('ldg1'), 'the receiving guest exists');
  // A guest of 1G has 131072 pages: a frame naming page 131072 is hostile.
  const frame = Buffer.alloc(5 + 4 + 5);
  frame[0] = 1;
  frame.writeUInt32BE(4 + 5, 1);
  frame.writeUInt32BE(1, 5);
  frame.writeUInt32BE(131072, 9);
  frame[13] = 0;
  s.conv.socket.write(frame);
  await s.closed;
  await s.migration.done;
  clean(t, 'a page past the guest');
  t.match(s.infos[0]?.error, /page 131072 .* past the guest's 131072 pages/, 'the statistics say why');
});

t.test('a digest that differs: mismatch, then the source cancels and nothing is kept', async (t) => {
  const s = await session(t);
  await s.say({ t: 'offer', id: 'm-5', offer: offer() });
  await s.answer();
  await s.say({ t: 'prepare' });
  await s.answer();
  const digest = new RunningDigest();
  await sendAll(s.conv, sourceGuest, digest);
  const wrong = ((digest.value + 1n) & ((1n << 64n) - 1n)).toString(16).padStart(16, '0');
  await s.say({ t: 'final', digest: wrong, runtime: sourceGuest.runtime() });
  t.same(await s.answer(), { t: 'mismatch', digest: digest.hex }, 'the target answers with its own digest');
  t.ok(target.ldm.domain('ldg1'), 'nothing is undone before the source decides');
  await s.say({ t: 'cancel', reason: 'digest mismatch' });
  await s.closed;
  await s.migration.done;
  clean(t, 'after the cancel');
  t.equal(s.infos[0]?.status, 'cancelled');
});

t.test('a source that goes silent: the received domain is removed after the idle bound', async (t) => {
  const s = await session(t, 300);
  await s.say({ t: 'offer', id: 'm-6', offer: offer() });
  await s.answer();
  await s.say({ t: 'prepare' });
  await s.answer();
  t.ok(target.ldm.domain('ldg1'), 'reserved');
  await s.closed;
  await s.migration.done;
  clean(t, 'after the idle bound');
  t.match(s.infos[0]?.error, /sent nothing for 0 s|sent nothing/);
});

t.test('a failing check answers its reason and closes; a dry run reserves nothing', async (t) => {
  const taken = await session(t);
  await taken.say({ t: 'offer', id: 'm-7', offer: offer({ targetName: 'primary' }) });
  const no = await taken.answer();
  t.match(no, { t: 'checked', ok: false, check: 'name' }, 'the name is taken on the target');
  await taken.closed;

  const dry = await session(t);
  await dry.say({ t: 'offer', id: 'm-8', offer: offer({ dryRun: true }) });
  t.match(await dry.answer(), { t: 'checked', ok: true });
  t.equal(target.ldm.domain('ldg1'), undefined, 'a dry run reserves nothing');
  await dry.say({ t: 'prepare' });
  await dry.closed;
  await dry.migration.done;
  clean(t, 'prepare after a dry run is refused');
});
