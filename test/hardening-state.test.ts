// Never save what cannot be loaded (issue 13, item 1). Amounts beyond what a
// JavaScript number holds exactly, and a delayed reconfiguration of the primary
// that its reboot could not make, are refused when asked; any other state the
// loader would reject is refused before it is written; and a saved delayed
// reconfiguration that cannot be applied at start is dropped, saying so, instead
// of keeping the agent from starting.
import t from 'tap';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guests } from '../agent/manager/guests.ts';
import { Ldm, ModelError } from '../agent/model/ldm.ts';
import { loadMachine } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { LdmState } from '../agent/model/types.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { startDaemonIn, type Daemon } from './helpers/daemon.ts';
import { cpu, data, memory, request } from './helpers/requests.ts';
import { adminSession, messages, ok } from './helpers/session.ts';

const G = 2 ** 30;
const root = mkdtempSync(join(tmpdir(), 'ldm-hardening-state-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
/** One certificate directory for every agent of this file (key generation is the slow part of a start). */
const certs = join(root, 'certs');

/** The requests of the probe that made the agent unable to start again; the last one of each must now be refused. */
const ATTEMPTS: [what: string, requests: string[], refusal: RegExp][] = [
  ['set-mau 99999999999999999999', [request('set-mau', data('ldg1', { type: 'mau', rasd: { AllocationUnits: '99999999999999999999' } }))], /AllocationUnits 99999999999999999999 is larger than the largest supported value, 9007199254740991/],
  [
    'add-vcpu 9007199254740991, then add-vcpu 1',
    [request('add-vcpu', data('ldg1', cpu(9007199254740991))), request('add-vcpu', data('ldg1', cpu(1)))],
    /The virtual CPU count of LDom ldg1 would be 9007199254740992: more than the largest supported value, 9007199254740991/,
  ],
  [
    'add-memory 8191T twice',
    [request('add-memory', data('ldg2', memory('8191T'))), request('add-memory', data('ldg2', memory('8191T')))],
    /The memory of LDom ldg2 would be 16382T: more than the largest supported value, 9007199254740991 bytes/,
  ],
  [
    'add-domain with cpu AllocationUnits 1e20',
    [request('add-domain', data('ldg3', { type: 'cpu', rasd: { AllocationUnits: '100000000000000000000' } }))],
    /AllocationUnits 100000000000000000000 is larger than the largest supported value/,
  ],
  ['set-memory of the primary beyond the machine', [request('set-memory', data('primary', memory('100G')))], /Not enough free memory present to meet this request: 96G requested, 60G free/],
];

t.test('over the XML interface: each amount is refused at the request, naming it, and nothing is kept', async (t) => {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']], certs });
  const admin = await adminSession(agent);
  t.teardown(() => admin.close());
  const send = async (text: string): Promise<LdmDocument> => admin.request(text);
  for (const name of ['ldg1', 'ldg2']) t.ok(ok(await send(request('add-domain', data(name)))));
  for (const [what, requests, refusal] of ATTEMPTS) {
    const before = structuredClone(agent.ldm.snapshot);
    const answers = [];
    for (const text of requests) answers.push(await send(text));
    const last = answers.at(-1)!;
    t.equal(last.response?.status, 'failure', `${what}: refused`);
    t.match(messages(last).join('; '), refusal, `${what}: the message names the value`);
    if (requests.length === 1) t.same(agent.ldm.snapshot, before, `${what}: the state is unchanged`);
  }
  t.equal(agent.ldm.domain('ldg1')!.vcpus, 9007199254740991, 'the largest exact count itself is accepted');
  t.equal(agent.ldm.domain('ldg2')!.memory, 8191 * 2 ** 40, 'and 8191T once');
  t.equal(agent.ldm.domain('ldg3'), undefined, 'the add-domain with 1e20 CPUs added nothing');
  t.equal(agent.ldm.domain('primary')!.delayedReconf, undefined, 'no delayed reconfiguration the reboot could not make');

  // More sizes and counts that do not fit, each refused with its value.
  const more: [string, string, RegExp][] = [
    ['a size beyond 2^53 bytes', request('set-memory', data('ldg1', memory('99999999999999999999G'))), /size 99999999999999999999G is larger than the largest supported size/],
    ['whole cores whose strands overflow', request('set-vcpu', data('ldg1', cpu(1, 2 ** 50))), /The virtual CPU count of LDom ldg1 would be 9007199254740992/],
    ['a size that rounds up past 2^53', request('set-memory', data('ldg1', memory(String(2 ** 53 - 1)))), /The memory of LDom ldg1 would be 8192T: more than the largest supported value/],
    [
      'a 10,000-digit count, not echoed whole',
      request('add-vcpu', data('ldg1', { type: 'cpu', rasd: { AllocationUnits: '9'.repeat(10_000) } })),
      /AllocationUnits 9{40}\.\.\. \(10000 characters\) is larger/,
    ],
  ];
  for (const [what, text, refusal] of more) {
    const r = await send(text);
    t.equal(r.response?.status, 'failure', `${what}: refused`);
    t.match(messages(r).join('; '), refusal, `${what}: named`);
  }

  // Within the machine, the primary's memory still changes at its reboot.
  const grow = await send(request('set-memory', data('primary', memory('8G'))));
  t.ok(ok(grow), 'set-memory 8G on the primary: accepted');
  t.same(agent.ldm.domain('primary')!.delayedReconf, { memory: 8 * G }, 'as a delayed reconfiguration');
});

t.test('a new state the loader would reject is refused before it is written, with its reason', async (t) => {
  // Request checks stop the amounts above; the model's own API can still be handed
  // values no request produces. The store's check (the loader's) is the last guard.
  const dir = join(root, 'guard');
  mkdirSync(dir);
  const machine = loadMachine(undefined, 'test-host');
  const ldm = await Ldm.open(machine, new StateStore(dir), () => {}, new Guests());
  await ldm.addDomain('ldg1');
  const file = join(dir, 'domains.json');
  const saved = readFileSync(file);
  const error = await ldm.setMau('ldg1', 'set', 0.5).catch((e: unknown) => e);
  t.ok(error instanceof ModelError, 'refused as a change (the client reads it)');
  t.equal(
    (error as Error).message,
    'The change was not made: the domain database would no longer load at the next start (domain ldg1: field mau is missing or malformed)',
  );
  t.ok(readFileSync(file).equals(saved), 'domains.json is untouched');
  t.equal(ldm.domain('ldg1')!.mau, 0, 'and so is the state in memory');
  const reopened = await Ldm.open(machine, new StateStore(dir), () => {}, new Guests());
  t.equal(reopened.domain('ldg1')!.mau, 0, 'the saved state loads');
});

// ── the real daemon, restarted on the same state ────────────────────────────

const local = (daemon: Daemon) => LdmClient.connect({ path: join(daemon.dir, 'var', 'ldmd.sock'), auth: { kind: 'local' } });

/** The model opened on a copy of `stateDir`'s domains.json: what a restart would meet, without stopping the daemon. */
async function opensAgain(stateDir: string): Promise<Ldm> {
  const copy = mkdtempSync(join(root, 'copy-'));
  copyFileSync(join(stateDir, 'domains.json'), join(copy, 'domains.json'));
  return Ldm.open(loadMachine(undefined, 'test-host'), new StateStore(copy), () => {}, new Guests());
}

t.test("the daemon starts again after the probe's attempts", async (t) => {
  const dir = join(root, 'daemon');
  mkdirSync(dir);
  cpSync(certs, join(dir, 'certs'), { recursive: true });
  let daemon = await startDaemonIn(t, dir);
  const client = await local(daemon);
  for (const name of ['ldg1', 'ldg2']) t.ok(ok(await client.request(request('add-domain', data(name)))));
  for (const [what, requests] of ATTEMPTS) {
    let last: LdmDocument | undefined;
    for (const text of requests) last = await client.request(text);
    t.equal(last!.response?.status, 'failure', `${what}: refused`);
    // The loader and the start of the model, on what this attempt left on disk.
    const reopened = await opensAgain(join(dir, 'var')).catch((err: unknown) => err);
    t.ok(reopened instanceof Ldm, `${what}: the saved state opens${reopened instanceof Error ? ` (${reopened.message})` : ''}`);
  }
  await client.close();
  t.equal(await daemon.stop(), 0, 'the daemon stops cleanly');
  daemon = await startDaemonIn(t, dir); // rejects if the daemon exits instead of listening
  t.match(daemon.stdout(), /XML interface listening on/, 'the daemon process starts again on the saved state');
  t.notMatch(daemon.stderr(), /damaged/, 'nothing damaged');
  const again = await local(daemon);
  t.teardown(() => again.close());
  t.ok(ok(await again.request(request('list-domain'))), 'and answers');
  const state = JSON.parse(readFileSync(join(dir, 'var', 'domains.json'), 'utf8')) as LdmState;
  t.same(state.domains.map((d) => d.name), ['primary', 'ldg1', 'ldg2']);
  t.equal(state.domains[0]!.delayedReconf, undefined);
});

t.test('a saved delayed reconfiguration the machine cannot satisfy: the daemon starts without it and says so', async (t) => {
  const dir = join(root, 'reconf');
  mkdirSync(join(dir, 'var'), { recursive: true });
  cpSync(certs, join(dir, 'certs'), { recursive: true });
  // The initial state, as a first start writes it; then edited as an older machine
  // file (or a hand edit) would leave it: the primary's pending memory does not fit.
  await Ldm.open(loadMachine(undefined, 'test-host'), new StateStore(join(dir, 'var')), () => {}, new Guests());
  const file = join(dir, 'var', 'domains.json');
  const s = JSON.parse(readFileSync(file, 'utf8')) as LdmState;
  const primary = s.domains.find((d) => d.name === 'primary')!;
  const memoryBefore = primary.memory;
  primary.delayedReconf = { memory: 100 * G };
  writeFileSync(file, JSON.stringify(s, null, 1) + '\n', { mode: 0o600 });

  const daemon = await startDaemonIn(t, dir);
  t.match(daemon.stdout(), /XML interface listening on/, 'the daemon starts');
  t.match(
    daemon.stderr(),
    /the delayed reconfiguration saved for primary cannot be applied \(Not enough free memory present to meet this request: 96G requested, 60G free\): starting without it/,
    'stderr says which change was dropped and why',
  );
  const after = JSON.parse(readFileSync(file, 'utf8')) as LdmState;
  const p = after.domains.find((d) => d.name === 'primary')!;
  t.equal(p.delayedReconf, undefined, 'the pending change is gone from domains.json');
  t.equal(p.memory, memoryBefore, 'the primary keeps its memory');
  const client = await local(daemon);
  t.teardown(() => client.close());
  const listing = await client.request(request('list-domain', data('primary')));
  t.equal(listing.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.get('flags'), '-n-c--', 'no `d` flag: nothing pending');
});
