// Crash safety of --state: the real daemon, SIGKILLed at a random moment while a
// client makes one change after another, many times over on the same state. After
// every kill, domains.json must parse and hold every acknowledged change (the one
// change sent but unanswered may or may not be there, but never half of it); after
// every restart the listings must say the same, and running guests run again.
//
// Replay a failure with LDM_KILL_SEED=<seed printed below>; LDM_KILL_ROUNDS sets the
// number of kill/restart rounds (default 20, at least 15 are always run).
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Content, Item, LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { parseSize } from '../agent/model/sizes.ts';
import { startDaemonIn, type Daemon } from './helpers/daemon.ts';
import { cpu, data, memory, request, variable } from './helpers/requests.ts';
import { messages, ok } from './helpers/session.ts';

const SEED = Number(process.env.LDM_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Math.max(15, Number(process.env.LDM_KILL_ROUNDS ?? 20));
/** Past this, stop adding rounds beyond the 15 required (a loaded machine). */
const BUDGET_MS = 65_000;
const MIN_ROUNDS = 15;

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

// ── the client's model of what the agent acknowledged ─────────────────────

type DomState = 'inactive' | 'bound' | 'active';
interface Dom {
  state: DomState;
  vcpus: number;
  /** Bytes. */
  memory: number;
  vars: [string, string][];
}
type Model = Map<string, Dom>;

interface Op {
  desc: string;
  xml: string;
  apply(m: Model): void;
}

const M = 2 ** 20;
const clone = (m: Model): Model => new Map([...m].map(([k, d]) => [k, { ...d, vars: d.vars.map(([a, b]) => [a, b] as [string, string]) }]));
/** A canonical text of a model, domains sorted by name (variables keep their order: it is part of the state). */
const canon = (m: Model) => JSON.stringify([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function setVar(d: Dom, name: string, value: string): void {
  const at = d.vars.findIndex(([k]) => k === name);
  if (at >= 0) d.vars[at] = [name, value];
  else d.vars.push([name, value]);
}

/** The next change to make, chosen from what the model says is possible (every one must succeed). */
function nextOp(m: Model, rnd: () => number, ids: { seq: number; name: number }): Op {
  const seq = ++ids.seq;
  const guests = [...m].filter(([n]) => n !== 'primary');
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const choices: [number, () => Op][] = [];
  const inState = (s: DomState) => guests.filter(([, d]) => d.state === s);

  if (guests.length < 8) {
    choices.push([2, () => {
      const name = `ldg${++ids.name}`;
      return { desc: `add-domain ${name}`, xml: request('add-domain', data(name)), apply: (x) => void x.set(name, { state: 'inactive', vcpus: 0, memory: 0, vars: [] }) };
    }]);
    choices.push([1, () => {
      // One change with constraints: all of it or nothing.
      const name = `ldg${++ids.name}`;
      return {
        desc: `add-domain ${name} with 2 vcpus, 512M, counter=${seq}`,
        xml: request('add-domain', data(name, cpu(2), memory('512M'), variable('counter', String(seq)))),
        apply: (x) => void x.set(name, { state: 'inactive', vcpus: 2, memory: 512 * M, vars: [['counter', String(seq)]] }),
      };
    }]);
  }
  const fewCpus = guests.filter(([, d]) => d.vcpus < 6);
  if (fewCpus.length > 0) {
    choices.push([2, () => {
      const [name] = pick(fewCpus);
      return { desc: `add-vcpu 1 ${name}`, xml: request('add-vcpu', data(name, cpu(1))), apply: (x) => void (x.get(name)!.vcpus += 1) };
    }]);
  }
  const littleMemory = guests.filter(([, d]) => d.memory < 2048 * M);
  if (littleMemory.length > 0) {
    choices.push([2, () => {
      const [name] = pick(littleMemory);
      return { desc: `add-memory 256M ${name}`, xml: request('add-memory', data(name, memory('256M'))), apply: (x) => void (x.get(name)!.memory += 256 * M) };
    }]);
  }
  choices.push([3, () => {
    const [name, d] = pick([...m]);
    const action = d.vars.some(([k]) => k === 'counter') ? 'set-variable' : 'add-variable';
    return {
      desc: `${action} counter=${seq} ${name}`,
      xml: request(action, data(name, variable('counter', String(seq)))),
      apply: (x) => setVar(x.get(name)!, 'counter', String(seq)),
    };
  }]);
  const bindable = inState('inactive').filter(([, d]) => d.vcpus > 0 && d.memory > 0);
  if (bindable.length > 0) {
    choices.push([2, () => {
      const [name] = pick(bindable);
      return { desc: `bind-domain ${name}`, xml: request('bind-domain', data(name)), apply: (x) => void (x.get(name)!.state = 'bound') };
    }]);
  }
  const bound = inState('bound');
  if (bound.length > 0) {
    choices.push([1, () => {
      const [name] = pick(bound);
      return { desc: `start-domain ${name}`, xml: request('start-domain', data(name)), apply: (x) => void (x.get(name)!.state = 'active') };
    }]);
    choices.push([1, () => {
      const [name] = pick(bound);
      return { desc: `unbind-domain ${name}`, xml: request('unbind-domain', data(name)), apply: (x) => void (x.get(name)!.state = 'inactive') };
    }]);
  }
  const active = inState('active');
  if (active.length > 0) {
    choices.push([1, () => {
      const [name] = pick(active);
      return { desc: `stop-domain ${name}`, xml: request('stop-domain', data(name)), apply: (x) => void (x.get(name)!.state = 'bound') };
    }]);
  }
  const removable = inState('inactive');
  if (removable.length > 0 && guests.length > 3) {
    choices.push([1, () => {
      const [name] = pick(removable);
      return { desc: `remove-domain ${name}`, xml: request('remove-domain', data(name)), apply: (x) => void x.delete(name) };
    }]);
  }
  let r = rnd() * choices.reduce((a, [w]) => a + w, 0);
  for (const [w, make] of choices) {
    r -= w;
    if (r < 0) return make();
  }
  return choices[choices.length - 1]![1]();
}

// ── reading the state back ────────────────────────────────────────────────

const STATE_NAMES = new Set(['domains.json', 'users.json', 'ldmd.sock']);
/** writeFileAtomic's temporary name: a dot file ending in .tmp, never taken for domains.json. */
const TEMP_RE = /^\.domains\.json\.\d+\.[0-9a-f]{12}\.tmp$/;

/** The model as domains.json holds it (throws when the file does not parse). */
function modelOfFile(file: string): Model {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { version: number; domains: { name: string; state: DomState; vcpus: number; memory: number; variables: [string, string][] }[] };
  if (json.version !== 1 || !Array.isArray(json.domains)) throw new Error(`${file}: not a state file`);
  return new Map(json.domains.map((d) => [d.name, { state: d.state, vcpus: d.vcpus, memory: d.memory, vars: d.variables }]));
}

/** Each bound domain's strands, memory blocks and console port, as `ra/pa/size` text: from the file... */
function bindingsOfFile(file: string): Map<string, string> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    domains: { name: string; bindings?: { strands: number[]; memory: { ra: number; pa: number; size: number }[]; consolePort?: number } }[];
  };
  return new Map(
    json.domains
      .filter((d) => d.bindings)
      .map((d) => [d.name, `${d.bindings!.strands.join(',')} | ${d.bindings!.memory.map((b) => `0x${b.ra.toString(16)}/0x${b.pa.toString(16)}/${b.size}`).join(',')} | ${d.bindings!.consolePort ?? ''}`]),
  );
}

/** ...and from list-bindings. */
async function bindingsOfAgent(client: LdmClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of contentsOf(await must(client, request('list-bindings')))) {
    const strands = itemsOf(c, 'cpu')[0]?.bindings ?? [];
    if (strands.length === 0) continue;
    const mem = (itemsOf(c, 'memory')[0]?.bindings ?? []).map((b) => `${b.props.get('ra')}/${b.props.get('pa')}/${parseSize(b.props.get('size') ?? '')}`);
    const port = c.id === 'primary' ? '' : (itemsOf(c, 'console')[0]?.props.get('port') ?? '');
    out.set(c.id, `${strands.map((b) => b.props.get('pid')).join(',')} | ${mem.join(',')} | ${port}`);
  }
  return out;
}

const contentsOf = (doc: LdmDocument): Content[] => doc.commands[0]?.data[0]?.envelope?.contents ?? [];
const itemsOf = (c: Content, type: string): Item[] => c.sections.flatMap((s) => s.items).filter((i) => i.type === type);
const varsOf = (c: Content): [string, string][] => itemsOf(c, 'var').map((i) => [i.props.get('name') ?? '', i.props.get('value') ?? '']);

/** A cpu count or a memory size in bytes; a domain with none lists no such item. */
function unitsOf(c: Content, type: 'cpu' | 'memory'): number {
  const units = itemsOf(c, type)[0]?.rasd.get('AllocationUnits');
  if (units === undefined) return 0;
  return (type === 'cpu' ? Number(units) : parseSize(units)) ?? Number.NaN;
}

async function must(client: LdmClient, text: string): Promise<LdmDocument> {
  const r = await client.request(text);
  if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}\n${text}`);
  return r;
}

/** The model as the agent lists it; `problems` collects what does not hang together between listings. */
async function modelOfAgent(client: LdmClient, problems: string[]): Promise<Model> {
  const [domains, constraints, vars, bindings, services] = [
    await must(client, request('list-domain')),
    await must(client, request('list-constraints')),
    await must(client, request('list-variable')),
    await must(client, request('list-bindings')),
    await must(client, request('list-services')),
  ];
  const m: Model = new Map();
  for (const c of contentsOf(domains)) {
    const info = itemsOf(c, 'ldom_info')[0];
    const state = info?.props.get('state') as DomState;
    m.set(c.id, {
      state,
      vcpus: unitsOf(c, 'cpu'),
      memory: unitsOf(c, 'memory'),
      vars: varsOf(c),
    });
    if (c.id !== 'primary' && state === 'active' && !info?.props.get('softstate')) problems.push(`${c.id} is active but its guest does not run (no softstate)`);
  }
  for (const c of contentsOf(constraints)) {
    const d = m.get(c.id);
    if (!d) problems.push(`${c.id} in list-constraints, not in list-domain`);
    else if (
      unitsOf(c, 'cpu') !== d.vcpus ||
      unitsOf(c, 'memory') !== d.memory ||
      JSON.stringify(varsOf(c)) !== JSON.stringify(d.vars)
    ) problems.push(`list-constraints and list-domain differ for ${c.id}`);
  }
  if (contentsOf(constraints).length !== m.size) problems.push('list-constraints and list-domain list different domains');
  for (const c of contentsOf(vars)) {
    if (JSON.stringify(varsOf(c)) !== JSON.stringify(m.get(c.id)?.vars)) problems.push(`list-variable differs for ${c.id}`);
  }
  for (const c of contentsOf(bindings)) {
    const d = m.get(c.id);
    if (!d || d.state === 'inactive') continue;
    const strands = itemsOf(c, 'cpu')[0]?.bindings.length;
    const mem = (itemsOf(c, 'memory')[0]?.bindings ?? []).reduce((a, b) => a + (parseSize(b.props.get('size') ?? '') ?? NaN), 0);
    if (strands !== d.vcpus) problems.push(`${c.id} is ${d.state} with ${d.vcpus} vcpus but ${strands} bound strands`);
    if (mem !== d.memory) problems.push(`${c.id} is ${d.state} with ${d.memory} bytes but ${mem} bound`);
    if (c.id !== 'primary' && !itemsOf(c, 'console')[0]?.props.get('port')) problems.push(`${c.id} is ${d.state} without a console port`);
  }
  const vcc = contentsOf(services).find((c) => c.id === 'primary');
  if (!vcc || itemsOf(vcc, 'vcc').length !== 1) problems.push('the console service primary-vcc0 is gone');
  return m;
}

function diff(a: Model, b: Model): string {
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  return names
    .filter((n) => JSON.stringify(a.get(n)) !== JSON.stringify(b.get(n)))
    .map((n) => `${n}: expected ${JSON.stringify(a.get(n))}, found ${JSON.stringify(b.get(n))}`)
    .join('\n');
}

// ── the test ──────────────────────────────────────────────────────────────

t.test(`SIGKILL during a loop of changes, ${ROUNDS} rounds, seed ${SEED}`, async (t) => {
  t.comment(`seed ${SEED}: replay with LDM_KILL_SEED=${SEED}`);
  const dir = mkdtempSync(join(tmpdir(), 'ldm-kill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'var');
  const stateFile = join(stateDir, 'domains.json');
  const socket = join(stateDir, 'ldmd.sock');
  const delays = prng(SEED);
  const choices = prng(SEED ^ 0x5eed);
  const ids = { seq: 0, name: 0 };
  const started = Date.now();

  const connect = () => LdmClient.connect({ path: socket, auth: { kind: 'local' }, timeoutMs: 15_000 });
  let daemon: Daemon = await startDaemonIn(t, dir);
  let client = await connect();

  // What every round builds on: a console service (bind needs a console port).
  await must(client, request('add-vconscon', data('primary', { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));
  let model: Model = await modelOfAgent(client, []);
  t.equal(model.size, 1, 'a fresh state: the primary only');

  let broken = false;
  const seenTemps = new Set<string>();
  const stats = { rounds: 0, acked: 0, unanswered: 0, landed: 0, lost: 0, idleKills: 0, startMs: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    if (round > MIN_ROUNDS && Date.now() - started > BUDGET_MS) {
      t.comment(`time budget reached after ${round - 1} rounds`);
      break;
    }
    // Changes, one after another, each recorded once the agent answered success.
    const delay = 20 + Math.floor(delays() * 281);
    let inflight: Op | undefined;
    let refused: string | undefined;
    let ackedThisRound = 0;
    const loop = (async () => {
      for (;;) {
        const op = nextOp(model, choices, ids);
        inflight = op;
        let r: LdmDocument;
        try {
          r = await client.request(op.xml);
        } catch {
          return; // the agent is gone: `op` may or may not have been made
        }
        inflight = undefined;
        if (!ok(r)) {
          refused = `${op.desc}: ${messages(r).join('; ')}`;
          return;
        }
        op.apply(model);
        ackedThisRound++;
      }
    })();
    await sleep(delay);
    const exit = await daemon.kill();
    await loop;
    client.close().catch(() => undefined);
    if (refused) {
      t.fail(`round ${round}: a change the model allows was refused: ${refused}`);
      broken = true;
      break;
    }
    t.equal(exit.signal, 'SIGKILL', `round ${round}: killed after ${delay} ms, ${ackedThisRound} changes acknowledged`);
    stats.acked += ackedThisRound;

    // On disk, before anything runs again: the acknowledged state, or it plus the unanswered change.
    const files = readdirSync(stateDir);
    const temps = files.filter((f) => TEMP_RE.test(f));
    const strangers = files.filter((f) => !STATE_NAMES.has(f) && !TEMP_RE.test(f));
    t.same(strangers, [], `round ${round}: nothing but the state, the socket and dot-named temporary files in ${stateDir}`);
    for (const f of temps) seenTemps.add(f);
    let onDisk: Model;
    try {
      onDisk = modelOfFile(stateFile);
    } catch (err) {
      t.fail(`round ${round}: ${stateFile} does not parse after SIGKILL: ${(err as Error).message}`);
      broken = true;
      break;
    }
    const unanswered = inflight as Op | undefined;
    const candidates: [string, Model][] = [['without the unanswered change', model]];
    if (unanswered) {
      const withIt = clone(model);
      unanswered.apply(withIt);
      candidates.push(['with the unanswered change', withIt]);
    }
    const match = candidates.find(([, c]) => canon(c) === canon(onDisk));
    if (!match) {
      t.fail(`round ${round}: domains.json holds neither the acknowledged state nor it plus "${unanswered?.desc ?? '(none in flight)'}"`, {
        diff: diff(model, onDisk),
      });
      broken = true;
      break;
    }
    if (!unanswered) stats.idleKills++;
    else {
      stats.unanswered++;
      if (match[1] === model) stats.lost++;
      else stats.landed++;
    }
    model = match[1];
    const boundOnDisk = bindingsOfFile(stateFile);
    t.pass(`round ${round}: domains.json parses and holds all ${stats.acked} acknowledged changes (${unanswered ? `"${unanswered.desc}" unanswered, ${match[0] === candidates[0]![0] ? 'not made' : 'made'}` : 'none unanswered'})`);

    // Restarted on the same directories: the listings say the same, running guests run again.
    const s = Date.now();
    daemon = await startDaemonIn(t, dir);
    stats.startMs.push(Date.now() - s);
    client = await connect();
    const problems: string[] = [];
    const listed = await modelOfAgent(client, problems);
    t.same(problems, [], `round ${round}: the listings agree with each other after the restart`);
    if (canon(listed) !== canon(model)) {
      t.fail(`round ${round}: after the restart the agent lists a different state`, { diff: diff(model, listed) });
      broken = true;
      break;
    }
    t.same(Object.fromEntries(await bindingsOfAgent(client)), Object.fromEntries(boundOnDisk), `round ${round}: the same strands, memory blocks and console ports are bound`);
    t.ok(readdirSync(stateDir).every((f) => STATE_NAMES.has(f) || TEMP_RE.test(f)), `round ${round}: restarted, ${model.size - 1} guests as they were`);
    stats.rounds = round;
  }

  if (broken) {
    t.comment(`stopped at the first broken round; seed ${SEED}, replay with LDM_KILL_SEED=${SEED}`);
    await daemon.kill();
    return;
  }
  // The temporary files a kill mid-write leaves are not state: the store sweeps them at start.
  const leftovers = readdirSync(stateDir).filter((f) => TEMP_RE.test(f));
  t.same(leftovers, [], 'temporary files left by killed writes are swept at start');
  await client.close();
  t.equal(await daemon.stop(), 0, 'the last daemon stops cleanly on SIGTERM');
  t.ok(stats.rounds >= MIN_ROUNDS, `${stats.rounds} kill/restart rounds (at least ${MIN_ROUNDS})`);
  const avg = stats.startMs.reduce((a, b) => a + b, 0) / Math.max(1, stats.startMs.length);
  t.comment(
    `${stats.rounds} rounds, ${stats.acked} changes acknowledged; killed with a change unanswered ${stats.unanswered} times ` +
      `(made ${stats.landed}, not made ${stats.lost}), between changes ${stats.idleKills} times; ` +
      `${seenTemps.size} temporary files left by killed writes; restart ${Math.round(avg)} ms on average; ${Math.round((Date.now() - started) / 1000)} s in all`,
  );
});
