// Persistence in --state, without crashes: what a restart brings back (domains in
// their state, the same bindings, running guests restarted with `domain-reset`), what
// a damaged domains.json does (the agent stops naming the file, which is left as it
// was), and what a refused or failed change leaves on disk and in memory (nothing).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type AgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/daemon.ts';
import { ErrorCodes, LdmError } from '../agent/errors.ts';
import { createLogger } from '../agent/log.ts';
import { Guests } from '../agent/manager/guests.ts';
import { Ldm, ModelError, type ModelEvent } from '../agent/model/ldm.ts';
import { loadMachine } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { LdmState } from '../agent/model/types.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { AGENT_ARGS } from './helpers/daemon.ts';
import { cpu, data, memory, request, variable } from './helpers/requests.ts';
import { messages, ok } from './helpers/session.ts';

const G = 2 ** 30;
const machine = loadMachine(undefined, 'test-host');
const root = mkdtempSync(join(tmpdir(), 'ldm-restart-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const dir = join(root, `state-${++dirs}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
};
/** One certificate directory for every agent of this file (key generation is the slow part of a start). */
const certs = join(root, 'certs');
const quiet = createLogger('error', 'ldm-agent', () => {});
const config = (state: string): AgentConfig => ({
  ...DEFAULT_CONFIG,
  listen: { host: '127.0.0.1', port: 0 },
  http: null,
  state,
  certs,
  hostname: 'test-host',
});

/** The model on `dir`, with a spy on what it announces and its guests. */
async function open(dir: string, store: StateStore = new StateStore(dir)) {
  const events: ModelEvent[] = [];
  const guests = new Guests();
  const ldm = await Ldm.open(machine, store, (ev) => events.push(ev), guests);
  return { ldm, events, guests, store };
}

async function agentOn(state: string): Promise<{ agent: RunningAgent; client: LdmClient }> {
  const agent = await startAgent(config(state), () => {}, quiet);
  const client = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
  return { agent, client };
}

async function must(client: LdmClient, text: string): Promise<LdmDocument> {
  const r = await client.request(text);
  if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}\n${text}`);
  return r;
}

/** A decoded listing without the decoder's `line` (where in the stream it came): what the agent said, only. */
/** A decoded document without source line numbers, and without uptimes (a restart boots the guests again). */
function withoutLines(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(withoutLines);
  if (x instanceof Map) return new Map([...x].filter(([k]) => k !== 'uptime').map(([k, v]) => [k, withoutLines(v)]));
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'line').map(([k, v]) => [k, withoutLines(v)]));
  return x;
}

const fileOf = (dir: string) => join(dir, 'domains.json');
const bytes = (file: string) => readFileSync(file);
/** Name, inode, size and mtime of every entry: "untouched" means none of these moved. */
const dirPrint = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map((f) => {
      const s = statSync(join(dir, f));
      return `${f} ${s.ino} ${s.size} ${s.mtimeMs}`;
    });

t.before(async () => {
  // Create the certificates once, with an agent that starts and stops at once.
  const { agent, client } = await agentOn(freshDir());
  await client.close();
  await agent.stop();
});

t.test('domains come back in their state with the same bindings; running guests are restarted', async (t) => {
  const dir = freshDir();
  const first = await open(dir);
  t.same(first.events, [], 'a first start announces nothing');
  const { ldm } = first;
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  await ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 1 * G, variables: [['boot-device', 'disk0']] }); // stays inactive
  await ldm.addDomain('ldg2', {}, { vcpus: 4, memory: 2 * G });
  await ldm.setVconsole('ldg2', { port: 5050 });
  await ldm.bindDomain('ldg2'); // bound
  await ldm.addDomain('ldg3', {}, { vcpus: 8, memory: 1 * G });
  await ldm.bindDomain('ldg3');
  await ldm.startDomain('ldg3'); // active, boots to Solaris
  await ldm.addDomain('ldg4', {}, { memory: 1 * G, variables: [['auto-boot?', 'false']] });
  await ldm.setVcpus('ldg4', 'set', 1, true); // a whole core
  await ldm.setMemory('ldg4', 'add', 512 * 2 ** 20);
  await ldm.bindDomain('ldg4');
  await ldm.startDomain('ldg4'); // active, at the ok prompt
  t.equal(first.guests.status('ldg3'), 'solaris');
  t.equal(first.guests.status('ldg4'), 'openboot');

  const before = structuredClone(ldm.snapshot) as LdmState;
  const saved = bytes(fileOf(dir));
  t.same(JSON.parse(saved.toString('utf8')), before, 'domains.json holds exactly the state in memory');

  // "Restart": a new model on the same directory (the old one is simply dropped, as by a kill).
  const second = await open(dir);
  t.same(second.ldm.snapshot, before, 'every domain, state, constraint and binding as it was (uuid, MAC, strands, memory blocks, console ports)');
  const state = (n: string) => second.ldm.domain(n)?.state;
  t.same(['primary', 'ldg1', 'ldg2', 'ldg3', 'ldg4'].map(state), ['active', 'inactive', 'bound', 'active', 'active']);
  t.equal(second.ldm.domain('ldg1')!.bindings, undefined, 'the inactive domain has no bindings');
  t.same(second.ldm.domain('ldg2')!.bindings, before.domains.find((d) => d.name === 'ldg2')!.bindings, 'the bound domain keeps its strands, memory and console port');
  t.equal(second.ldm.domain('ldg2')!.bindings!.consolePort, 5050, 'the console port asked for');
  t.equal(second.ldm.domain('ldg4')!.bindings!.strands.length, 8, 'a whole core');
  t.same(
    second.events,
    [
      { class: 'domain', action: 'domain-reset', domain: 'ldg3' },
      { class: 'domain', action: 'domain-reset', domain: 'ldg4' },
    ],
    'domain-reset for each guest that was running, not for the primary nor for the others',
  );
  t.equal(second.guests.status('ldg3'), 'solaris', 'ldg3 was restarted, to Solaris');
  t.equal(second.guests.status('ldg4'), 'openboot', 'ldg4 was restarted, to the ok prompt (auto-boot? false)');
  t.equal(second.guests.status('ldg2'), undefined, 'a bound domain is not started');
  t.equal(second.guests.status('primary'), undefined, 'the primary is not a guest');
  t.ok(bytes(fileOf(dir)).equals(saved), 'opening rewrote nothing');

  // The restored bindings are taken: new allocations go around them.
  await second.ldm.bindDomain('ldg1');
  const taken = new Set(['primary', 'ldg2', 'ldg3', 'ldg4'].flatMap((n) => second.ldm.domain(n)!.bindings!.strands));
  const ldg1 = second.ldm.domain('ldg1')!.bindings!;
  t.ok(ldg1.strands.every((s) => !taken.has(s)), 'ldg1 gets strands nobody has');
  t.notOk(['ldg2', 'ldg3', 'ldg4'].map((n) => second.ldm.domain(n)!.bindings!.consolePort).includes(ldg1.consolePort), 'and a console port nobody has');
  const overlaps = (a: { pa: number; size: number }, b: { pa: number; size: number }) => a.pa < b.pa + b.size && b.pa < a.pa + a.size;
  const others = ['primary', 'ldg2', 'ldg3', 'ldg4'].flatMap((n) => second.ldm.domain(n)!.bindings!.memory);
  t.ok(ldg1.memory.every((m) => others.every((o) => !overlaps(m, o))), 'and memory nobody has');
  // A second restart after more changes: still as saved.
  await second.ldm.stopDomain('ldg3');
  const third = await open(dir);
  t.same(third.ldm.snapshot, second.ldm.snapshot);
  t.same(third.events, [{ class: 'domain', action: 'domain-reset', domain: 'ldg4' }], 'only the guest still running is reset');
});

t.test("the primary's delayed reconfiguration is applied at open (its reboot)", async (t) => {
  const dir = freshDir();
  const { ldm } = await open(dir);
  const r = await ldm.setMemory('primary', 'add', 1 * G);
  t.ok(r.delayed, 'adding memory to the running primary waits for its reboot');
  const onDisk = JSON.parse(readFileSync(fileOf(dir), 'utf8')) as LdmState;
  t.same(onDisk.domains.find((d) => d.name === 'primary')!.delayedReconf, { memory: 5 * G }, 'the pending change is saved');
  t.equal(ldm.domain('primary')!.memory, 4 * G, 'and not applied yet');

  const reopened = await open(dir);
  const primary = reopened.ldm.domain('primary')!;
  t.equal(primary.memory, 5 * G, 'applied at open');
  t.equal(primary.delayedReconf, undefined);
  t.equal(primary.bindings!.memory.reduce((a, b) => a + b.size, 0), 5 * G, 'and bound');
  t.same(JSON.parse(readFileSync(fileOf(dir), 'utf8')), reopened.ldm.snapshot, 'and saved');
  t.same(reopened.events, [], 'no domain-reset for the primary');
});

t.test('over the XML interface: the same listings before and after a restart of the agent', async (t) => {
  const dir = freshDir();
  let { agent, client } = await agentOn(dir);
  await must(client, request('add-vconscon', data('primary', { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));
  for (const [name, n] of [['ldg1', 2], ['ldg2', 3], ['ldg3', 5]] as const) {
    await must(client, request('add-domain', data(name)));
    await must(client, request('add-vcpu', data(name, cpu(n))));
    await must(client, request('add-memory', data(name, memory(`${n}G`))));
    await must(client, request('add-variable', data(name, variable('counter', String(n)))));
  }
  await must(client, request('bind-domain', data('ldg2')));
  await must(client, request('bind-domain', data('ldg3')));
  await must(client, request('start-domain', data('ldg3')));
  const actions = ['list-domain', 'list-bindings', 'list-constraints', 'list-variable', 'list-services', 'list-devices'];
  const listings = async (c: LdmClient) => {
    const out: Record<string, unknown> = {};
    for (const a of actions) out[a] = withoutLines((await must(c, request(a))).commands[0]!.data);
    return out;
  };
  const before = await listings(client);
  await client.close();
  await agent.stop();

  ({ agent, client } = await agentOn(dir));
  t.teardown(async () => {
    await client.close();
    await agent.stop();
  });
  t.same(await listings(client), before, `${actions.join(', ')}: the same after the restart`);
  const info = (await must(client, request('list-domain', data('ldg3')))).commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!;
  t.equal(info.props.get('state'), 'active');
  t.equal(info.props.get('softstate'), 'Solaris running', 'the guest runs again');
});

// ── damaged state ─────────────────────────────────────────────────────────

const primaryOnly = (): LdmState => {
  const s = JSON.parse(readFileSync(fileOf(templateDir), 'utf8')) as LdmState;
  return s;
};
let templateDir = '';
t.before(async () => {
  templateDir = freshDir();
  await open(templateDir); // a first start writes the initial state
});

const DAMAGED: [string, () => string | Buffer][] = [
  ['not JSON (cut short)', () => readFileSync(fileOf(templateDir), 'utf8').slice(0, 200)],
  ['an empty file', () => ''],
  ['binary garbage', () => Buffer.from([0x00, 0xff, 0x7b, 0x22, 0x00, 0x13])],
  ['JSON null', () => 'null\n'],
  ['a JSON list', () => '[]\n'],
  ['another format version', () => JSON.stringify({ ...primaryOnly(), version: 2 })],
  ['"domains" not a list', () => JSON.stringify({ ...primaryOnly(), domains: { primary: {} } })],
  ['"vcc" missing', () => JSON.stringify({ ...primaryOnly(), vcc: undefined })],
  ['a domain entry with a bad state', () => JSON.stringify({ ...primaryOnly(), domains: [...primaryOnly().domains, { ...primaryOnly().domains[0]!, name: 'ldg1', state: 'running' }] })],
  ['the primary missing', () => JSON.stringify({ ...primaryOnly(), domains: [{ ...primaryOnly().domains[0]!, name: 'ldg1' }] })],
];

t.test('a damaged domains.json stops Ldm.open and startAgent with a message naming it, and is left untouched', async (t) => {
  for (const [what, content] of DAMAGED) {
    const dir = freshDir();
    const file = fileOf(dir);
    writeFileSync(file, content(), { mode: 0o600 });
    const original = bytes(file);
    const print = dirPrint(dir);
    for (const [how, attempt] of [
      ['Ldm.open', () => open(dir)],
      ['startAgent', () => startAgent(config(dir), () => {}, quiet)],
    ] as const) {
      let error: unknown;
      try {
        const started = await attempt();
        if ('stop' in started) await started.stop();
      } catch (err) {
        error = err;
      }
      t.ok(error instanceof LdmError && error.code === ErrorCodes.STATE_DAMAGED, `${what}: ${how} fails (${ErrorCodes.STATE_DAMAGED})`);
      t.match((error as Error | undefined)?.message, file, `${what}: ${how}'s message names ${file}`);
    }
    t.ok(bytes(file).equals(original), `${what}: the file is byte-for-byte as it was`);
    t.same(dirPrint(dir).filter((l) => !l.startsWith('ldmd.sock') && !l.startsWith('users.json')), print, `${what}: nothing written beside it`);
  }
});

t.test('a domains.json that cannot be read (a directory in its place) stops the agent, naming it', async (t) => {
  const dir = freshDir();
  mkdirSync(fileOf(dir));
  await t.rejects(open(dir), { code: ErrorCodes.STATE_DAMAGED, message: new RegExp(`cannot read the domain database ${fileOf(dir)}`) });
  t.ok(statSync(fileOf(dir)).isDirectory(), 'left in place');
});

t.test('a domain entry missing its fields is refused at open, naming the file', async (t) => {
  // shapeProblem (agent/model/store.ts) checks only each domain's name and state.
  for (const state of ['active', 'inactive'] as const) {
    const dir = freshDir();
    const s = primaryOnly();
    writeFileSync(fileOf(dir), JSON.stringify({ ...s, domains: [...s.domains, { name: 'ldg1', state }] }));
    const original = bytes(fileOf(dir));
    let error: unknown;
    try {
      const { ldm } = await open(dir);
      await ldm.bindDomain('ldg1'); // what a later change of this domain meets
    } catch (err) {
      error = err;
    }
    const named = error instanceof LdmError && error.code === ErrorCodes.STATE_DAMAGED && error.message.includes(fileOf(dir));
    t.ok(named, `an ${state} domain with only a name and a state: refused at open, naming the file (got ${(error as Error | undefined)?.message ?? 'no error'})`);
    t.ok(bytes(fileOf(dir)).equals(original), 'the file is left as it was');
  }
});

t.test('the daemon (bin/ldm-agent.js) on a damaged state exits non-zero naming the file', async (t) => {
  for (const [what, content] of [DAMAGED[0]!, DAMAGED[DAMAGED.length - 1]!]) {
    const dir = freshDir();
    const file = fileOf(dir);
    writeFileSync(file, content(), { mode: 0o600 });
    const original = bytes(file);
    const child = spawn(process.execPath, [...AGENT_ARGS, '--listen', '127.0.0.1:0', '--http', 'off', '--state', dir, '--certs', certs, '--hostname', 'test-host'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code] = (await new Promise((resolve) => child.once('exit', (...a) => resolve(a)))) as [number | null, string | null];
    clearTimeout(timer);
    t.equal(code, 1, `${what}: exit status 1`);
    t.match(err, `ldm-agent: cannot start: the domain database ${file} is damaged`, `${what}: stderr names the file`);
    t.notMatch(out, /listening/, `${what}: it never listened`);
    t.ok(bytes(file).equals(original), `${what}: the file is byte-for-byte as it was`);
  }
});

// ── refused and failed changes ────────────────────────────────────────────

t.test('a refused change leaves domains.json byte-for-byte unchanged (not even rewritten)', async (t) => {
  const dir = freshDir();
  const { agent, client } = await agentOn(dir);
  t.teardown(async () => {
    await client.close();
    await agent.stop();
  });
  await must(client, request('add-domain', data('ldg1')));
  await must(client, request('add-variable', data('ldg1', variable('a', '1'))));
  const file = fileOf(dir);
  const refusals: [string, string, RegExp][] = [
    ['add-domain of a name that exists', request('add-domain', data('ldg1')), /LDom ldg1 already exists/],
    ['bind-domain of a domain without CPUs', request('bind-domain', data('ldg1')), /has no virtual CPUs/],
    ['remove-domain primary', request('remove-domain', data('primary')), /cannot be removed/],
    ['add-variable of a variable that exists', request('add-variable', data('ldg1', variable('a', '2'))), /Variable a already exists/],
    ['add-domain with constraints the machine cannot give', request('add-domain', data('ldg9', cpu(2), { type: 'physio_device', props: { name: 'no-such-io' } })), /./],
  ];
  for (const [what, text, why] of refusals) {
    const original = bytes(file);
    const print = dirPrint(dir);
    const r = await client.request(text);
    t.equal(r.response?.status, 'failure', `${what}: refused`);
    t.match(messages(r).join('; '), why);
    t.ok(bytes(file).equals(original), `${what}: domains.json byte-for-byte unchanged`);
    t.same(dirPrint(dir), print, `${what}: not rewritten (same inode and mtime), no other file`);
  }
  const listed = await must(client, request('list-domain'));
  t.same(listed.commands[0]!.data[0]!.envelope!.contents.map((c) => c.id), ['primary', 'ldg1'], 'no trace of ldg9');
});

t.test('a refused object of several parts leaves none of them', async (t) => {
  // One <data> is one object, answered once: refused, it must leave nothing (ldm.ts: "a
  // refused or failed change leaves nothing behind"). agent/manager/handlers.ts makes one
  // model change per variable (and per Content of add-domain), so the parts before the
  // refused one stay, saved.
  const dir = freshDir();
  const { agent, client } = await agentOn(dir);
  t.teardown(async () => {
    await client.close();
    await agent.stop();
  });
  await must(client, request('add-domain', data('ldg1')));
  await must(client, request('add-variable', data('ldg1', variable('a', '1'))));
  const file = fileOf(dir);
  let original = bytes(file);
  let r = await client.request(request('add-variable', data('ldg1', variable('b', '2'), variable('a', '3'))));
  t.equal(r.response?.status, 'failure', 'add-variable b=2 a=3 is refused (a exists)');
  let unchanged = bytes(file).equals(original);
  t.ok(unchanged, 'add-variable b=2 a=3: domains.json unchanged');

  original = bytes(file);
  const two = `<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg2"/><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"/></Envelope></data>`;
  r = await client.request(request('add-domain', two));
  t.equal(r.response?.status, 'failure', 'add-domain ldg2 ldg1 in one object is refused (ldg1 exists)');
  unchanged = bytes(file).equals(original);
  t.ok(unchanged, 'add-domain ldg2 ldg1: domains.json unchanged');
});

t.test('a save that fails on the file system: answered as a failure, no trace in memory or on disk', async (t) => {
  // Tests run as root, where a read-only mode stops nothing: a directory in the place
  // of domains.json makes the rename of the new file fail (EISDIR) for anyone.
  const dir = freshDir();
  const { agent, client } = await agentOn(dir);
  t.teardown(async () => {
    await client.close();
    await agent.stop();
  });
  await must(client, request('add-domain', data('ldg1')));
  const file = fileOf(dir);
  const aside = join(dir, 'domains.json.aside');
  const listDomains = async () => (await must(client, request('list-domain'))).commands[0]!.data[0]!.envelope!.contents.map((c) => c.id);
  const listVars = async () =>
    (await must(client, request('list-variable', data('ldg1')))).commands[0]!.data[0]!.envelope!.contents[0]!.sections.flatMap((s) => s.items).map((i) => i.props.get('name'));
  const before = await must(client, request('list-constraints'));

  renameSync(file, aside);
  mkdirSync(file);
  writeFileSync(join(file, 'keep'), 'a non-empty directory');
  for (const [what, text] of [
    ['add-domain ldg2', request('add-domain', data('ldg2'))],
    ['add-variable on ldg1', request('add-variable', data('ldg1', variable('x', '1')))],
    ['remove-domain ldg1', request('remove-domain', data('ldg1'))],
  ] as const) {
    const r = await client.request(text);
    t.equal(r.response?.status, 'failure', `${what}: answered as a failure`);
    t.match(messages(r).join('; '), /internal error/, `${what}: with the agent's internal-error text`);
  }
  t.same(await listDomains(), ['primary', 'ldg1'], 'list-domain: no ldg2, ldg1 still there');
  t.same(await listVars(), [], 'list-variable: no x');
  t.same(withoutLines((await must(client, request('list-constraints'))).commands[0]!.data), withoutLines(before.commands[0]!.data), 'list-constraints exactly as before');
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left behind');

  rmSync(file, { recursive: true });
  renameSync(aside, file);
  await must(client, request('add-domain', data('ldg2')));
  t.same(await listDomains(), ['primary', 'ldg1', 'ldg2'], 'once the file system is back, changes are saved again');
  const onDisk = JSON.parse(readFileSync(file, 'utf8')) as LdmState;
  t.same(onDisk.domains.map((d) => [d.name, d.variables]), [['primary', []], ['ldg1', []], ['ldg2', []]], 'and the file has no trace of the failed changes');
});

class FailingStore extends StateStore {
  failing = false;
  saves = 0;
  override async save(state: LdmState): Promise<void> {
    this.saves++;
    if (this.failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    return super.save(state);
  }
}

t.test('a save that throws (a StateStore that fails): the change is refused whole, nothing swapped in or announced', async (t) => {
  const dir = freshDir();
  const store = new FailingStore(dir);
  const { ldm, events, guests } = await open(dir, store);
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  await ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 1 * G });
  await ldm.bindDomain('ldg1');
  const snapshot = structuredClone(ldm.snapshot);
  const saved = bytes(fileOf(dir));
  events.length = 0;

  store.failing = true;
  const attempts: [string, () => Promise<unknown>][] = [
    ['addDomain', () => ldm.addDomain('ldg2', {}, { vcpus: 1, memory: 1 * G })],
    ['startDomain', () => ldm.startDomain('ldg1')],
    ['setVcpus', () => ldm.setVcpus('ldg1', 'add', 2, false)],
    ['setMemory', () => ldm.setMemory('ldg1', 'add', 1 * G)],
    ['setVariable', () => ldm.setVariables('ldg1', 'add', [['x', '1']])],
    ['unbindDomain', () => ldm.unbindDomain('ldg1')],
  ];
  for (const [what, attempt] of attempts) {
    await t.rejects(attempt(), { code: 'EIO' }, `${what}: the save's error`);
    t.notOk((await attempt().catch((e: unknown) => e)) instanceof ModelError, `${what}: not a refusal of the model`);
  }
  t.same(ldm.snapshot, snapshot, 'the state in memory is unchanged');
  t.same(events, [], 'nothing announced');
  t.equal(guests.status('ldg1'), undefined, 'the guest of the failed start-domain was not started');
  t.ok(bytes(fileOf(dir)).equals(saved), 'the file is unchanged');

  store.failing = false;
  await ldm.setVariables('ldg1', 'add', [['y', '2']]);
  t.same(ldm.domain('ldg1')!.variables, [['y', '2']], 'the next change works, without the failed ones');
  t.equal(events.length, 1, 'one event: the change that worked');
  t.match(events[0], { class: 'resource', action: 'add-variable', domain: 'ldg1' });
  const reopened = await open(dir);
  t.same(reopened.ldm.snapshot, ldm.snapshot, 'and a restart finds the same');
});

t.test('a save whose directory fsync fails (after the rename) leaves no trace after a restart', async (t) => {
  // writeFileAtomic renames the new file in place, then fsyncs the directory. If that
  // fsync fails the change is answered as failed and kept out of memory, yet the file
  // already holds it: a restart brings back a change the client was told failed.
  let failDirSync = false;
  const { StateStore: MockedStore } = await t.mockImport<typeof import('../agent/model/store.ts')>('../agent/model/store.ts', {
    'node:fs/promises': {
      ...fsp,
      open: async (...args: Parameters<typeof fsp.open>) => {
        const handle = await fsp.open(...args);
        if (failDirSync && args[1] === 'r' && (await handle.stat()).isDirectory()) {
          handle.sync = async () => {
            throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
          };
        }
        return handle;
      },
    },
  });
  const dir = freshDir();
  const { ldm } = await open(dir, new MockedStore(dir));
  failDirSync = true;
  await t.rejects(ldm.addDomain('ldg1'), { code: 'EIO' }, 'answered as a failure');
  t.equal(ldm.domain('ldg1'), undefined, 'not in memory');
  failDirSync = false;
  const reopened = await open(dir);
  const absent = reopened.ldm.domain('ldg1') === undefined;
  t.ok(absent, 'not there after a restart either');
});
