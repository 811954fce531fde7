/**
 * Guests within the host (issue 13, item 8): a guest's working set is real memory of
 * the agent, so the simulator holds all guests to a budget of resident memory, refuses a
 * start or a growth that would pass it (naming the budget), and gives a destroyed guest's
 * memory back to the system. Each case runs the real daemon as a child process and reads
 * its resident set from /proc.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startDaemon, type Daemon } from './helpers/daemon.ts';
import { cpu, data, memory, request, variable } from './helpers/requests.ts';
import { messages, ok } from './helpers/session.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { join } from 'node:path';
import type { LdmDocument } from '../agent/xml/document.ts';
import { ErrorCodes } from '../agent/errors.ts';
import { defaultMemoryBudget, DEFAULT_BUDGET_CAP } from '../agent/hypervisor/budget.ts';
import { PAGE_SIZE } from '../agent/hypervisor/memory.ts';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { Guests } from '../agent/manager/guests.ts';
import { createLogger } from '../agent/log.ts';
import type { DomainConfig } from '../agent/model/types.ts';
import { loadConfig } from '../agent/config.ts';

const MB = 1e6;
const M = 2 ** 20;
const G = 2 ** 30;

t.test('the default budget: a quarter of the host, at most 8G, in whole MiB', async (t) => {
  t.equal(defaultMemoryBudget(1 * G), 256 * M);
  t.equal(defaultMemoryBudget(6 * G + 12345), 1.5 * G, 'rounded down to a MiB');
  t.equal(defaultMemoryBudget(512 * G), DEFAULT_BUDGET_CAP);
  t.equal(DEFAULT_BUDGET_CAP, 8 * G);
});

t.test('the budget is set by --guest-memory or the guestMemory key; nonsense is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-guest-memory-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (value: unknown) => {
    const path = join(dir, `c${Math.random()}.json`);
    writeFileSync(path, JSON.stringify({ guestMemory: value }));
    return path;
  };
  t.equal(loadConfig([]).guestMemory, undefined, 'default: from the host');
  t.equal(loadConfig(['--guest-memory', '512M']).guestMemory, 512 * M);
  t.equal(loadConfig(['--config', file('2G')]).guestMemory, 2 * G);
  t.equal(loadConfig(['--config', file(1048576)]).guestMemory, M, 'or a number of bytes');
  t.equal(loadConfig(['--config', file('2G'), '--guest-memory', '1G']).guestMemory, G, 'the option wins over the file');
  for (const bad of ['lots', '0', '-1G', '99999999T']) t.throws(() => loadConfig([`--guest-memory=${bad}`]), { code: ErrorCodes.USAGE, message: /guest memory budget/ }, bad);
  t.throws(() => loadConfig(['--config', file(true)]), { code: ErrorCodes.USAGE });
});

t.test('the simulator: creation, growth and page writes within the budget; destroy gives the claim back', async (t) => {
  const hv = new SimHypervisor({ memoryBudget: 16 * M });
  t.teardown(() => hv.close());
  t.throws(() => hv.create({ name: 'big', memoryBytes: 1 * G, workload: { workingSet: 32 * M } }), { code: ErrorCodes.GUEST_MEMORY_BUDGET, message: /budget of 16M/ });
  t.equal(hv.guest('big'), undefined, 'a refused guest is not created');
  t.equal(hv.memoryBudget.used, 0, 'and claims nothing');
  t.doesNotThrow(() => hv.create({ name: 'zero', memoryBytes: 1 * G, workload: { workingSet: 1 * G, fill: 'zero' } }), 'a zero fill allocates nothing, so it claims nothing');
  const g = hv.create({ name: 'g', memoryBytes: 1 * G, workload: { workingSet: 8 * M } });
  t.equal(hv.memoryBudget.used, 8 * M, 'the working set is reserved at creation');
  t.throws(() => g.setWorkload({ workingSet: 20 * M }), { code: ErrorCodes.GUEST_MEMORY_BUDGET }, 'growth past the budget');
  t.equal(g.workloadStats().workingSetPages, (8 * M) / PAGE_SIZE, 'leaves the workload as it was');
  g.setWorkload({ workingSet: 16 * M });
  t.equal(hv.memoryBudget.used, 16 * M);
  // The budget is full: a guest without a working set (an incoming migration's target) cannot store pages.
  const target = hv.create({ name: 'target', memoryBytes: 1 * G, workload: { workingSet: 0 } });
  const page = Buffer.alloc(PAGE_SIZE, 7);
  t.throws(() => target.writePages([{ index: 0, bytes: null }, { index: 5, bytes: page }]), { code: ErrorCodes.GUEST_MEMORY_BUDGET, message: /guest target cannot hold 512K/ });
  t.equal(target.touchedPages, 0, 'nothing of the batch was written');
  target.writePages([{ index: 0, bytes: null }]);
  t.equal(target.touchedPages, 1, 'a zero page needs no storage');
  g.writePages([{ index: 100_000, bytes: page }]);
  t.equal(g.residentBytes, 512 * 1024, 'a guest writes anywhere within its reservation');
  await g.destroy();
  t.equal(hv.memoryBudget.used, 0, 'destroy gives the claim back');
  target.writePages([{ index: 5, bytes: page }]);
  t.equal(hv.memoryBudget.used, 512 * 1024, 'then the other guest can store its page');
  t.doesNotThrow(() => hv.create({ name: 'again', memoryBytes: 1 * G, workload: { workingSet: 15 * M } }), 'the rest of the budget is free again');
});

t.test('at the agent start, a guest beyond a smaller budget starts without its working set rather than stop the agent', async (t) => {
  const lines: string[] = [];
  const guests = new Guests(createLogger('info', 'ldm-agent', (l) => lines.push(l)), new SimHypervisor({ memoryBudget: 32 * M }));
  t.teardown(() => guests.close());
  const d = { name: 'ldg1', state: 'active', memory: 1 * G, variables: [['sim-working-set', '256M']] } as unknown as DomainConfig;
  guests.start(d);
  const g = guests.hypervisor.guest('ldg1')!;
  t.equal(g.state, 'running', 'the guest runs');
  t.equal(g.workloadStats().workingSetPages, 0, 'without a working set');
  t.match(lines.join(''), /warn ldm-agent: guest started without its working set: guest ldg1 cannot hold 256M .* budget of 32M/);
  t.throws(() => guests.check(d), { code: ErrorCodes.GUEST_MEMORY_BUDGET }, 'a later change that keeps the working set is refused before it is saved');
});

/** The child's resident set in bytes (Linux). */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function local(t: Test, daemon: Daemon): Promise<(xml: string) => Promise<LdmDocument>> {
  const client = await LdmClient.connect({ path: join(daemon.dir, 'var', 'ldmd.sock'), auth: { kind: 'local' } });
  t.teardown(() => client.close());
  // Bound domains need a console port.
  const vcc = await client.request(request('add-vconscon', data(null, { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));
  if (!ok(vcc)) throw new Error(`refused: ${messages(vcc).join('; ')}`);
  return (xml) => client.request(xml);
}

/** A domain with 1 vCPU and `mem` of memory, its variables set, bound. */
async function boundDomain(send: (xml: string) => Promise<LdmDocument>, name: string, mem: string, vars: [string, string][]): Promise<void> {
  for (const xml of [
    request('add-domain', data(name)),
    request('add-vcpu', data(name, cpu(1))),
    request('add-memory', data(name, memory(mem))),
    ...(vars.length > 0 ? [request('add-variable', data(name, ...vars.map(([k, v]) => variable(k, v))))] : []),
    request('bind-domain', data(name)),
  ]) {
    const r = await send(xml);
    if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}`);
  }
}

const variablesOf = async (send: (xml: string) => Promise<LdmDocument>, name: string) => {
  const r = await send(request('list-variable', data(name)));
  const items = r.commands[0]!.data.flatMap((d) => d.envelope?.contents ?? []).flatMap((c) => c.sections.flatMap((s) => s.items));
  return new Map(items.map((i) => [i.props.get('name'), i.props.get('value')]));
};

t.test('with --guest-memory 128M, a start and a growth beyond it are refused, naming the budget', async (t) => {
  const daemon = await startDaemon(t, ['--guest-memory', '128M']);
  t.match(daemon.stdout(), /simulated guests may hold 128M of memory/, 'the banner states the budget');
  const send = await local(t, daemon);

  await boundDomain(send, 'big', '512M', [['sim-working-set', '256M']]);
  const start = await send(request('start-domain', data('big')));
  t.notOk(ok(start), 'a 256M working set does not start under a 128M budget');
  t.match(messages(start).join('\n'), /guest big cannot hold 256M.*budget of 128M/, `the refusal names the budget: ${messages(start).join('; ')}`);
  const list = await send(request('list-domain', data('big')));
  t.match(JSON.stringify(list.commands[0]!.data.map((d) => d.envelope?.contents.map((c) => c.sections.map((s) => s.items.map((i) => [...i.props]))))), /"state","bound"/, 'and the domain stays bound');

  // A guest that fits starts; growing its working set past the budget is refused and not saved.
  await boundDomain(send, 'small', '256M', [['sim-working-set', '64M']]);
  t.ok(ok(await send(request('start-domain', data('small')))), 'a 64M working set starts');
  const grow = await send(request('set-variable', data('small', variable('sim-working-set', '200M'))));
  t.notOk(ok(grow), 'growing it to 200M would pass the budget');
  t.match(messages(grow).join('\n'), /budget of 128M/, `the refusal names the budget: ${messages(grow).join('; ')}`);
  t.equal((await variablesOf(send, 'small')).get('sim-working-set'), '64M', 'the working set is unchanged');
  t.ok(ok(await send(request('set-variable', data('small', variable('sim-working-set', '96M'))))), 'growth within the budget is allowed');

  // The other guest's claim counts: 64M more would pass 128M next to 96M.
  await boundDomain(send, 'third', '256M', [['sim-working-set', '64M']]);
  const second = await send(request('start-domain', data('third')));
  t.notOk(ok(second), 'a second guest that would take the total past the budget is refused');
  t.match(messages(second).join('\n'), /other guests hold 96M of the guest memory budget of 128M/, messages(second).join('; '));
  t.equal(await daemon.stop(), 0, 'the agent stops cleanly');
});

t.test('destroying a 256M guest gives its memory back to the system', async (t) => {
  const daemon = await startDaemon(t, ['--guest-memory', '1G']);
  const pid = daemon.proc.pid!;
  const send = await local(t, daemon);
  await boundDomain(send, 'ldg1', '512M', [
    ['sim-working-set', '256M'],
    ['sim-fill', 'random'],
  ]);
  // Warm up the request path, so that what the heap keeps of it is in the baseline.
  for (let i = 0; i < 20; i++) await send(request('list-domain'));
  const before = rss(pid);
  t.ok(ok(await send(request('start-domain', data('ldg1')))), 'started');
  // The fill is paced (about 40 % of a core): wait until the working set is resident.
  await until('the working set to be filled', () => rss(pid) - before > 250 * MB, 90_000);
  const filled = rss(pid);
  t.ok(ok(await send(request('stop-domain', data('ldg1')))), 'stopped (the guest is destroyed and scrubbed before the answer)');
  let after = rss(pid);
  await until('RSS to fall', () => (after = rss(pid)) - before < 40 * MB, 3000).catch(() => {});
  const fmt = (b: number) => `${(b / MB).toFixed(0)} MB`;
  t.ok(filled - before > 250 * MB, `filling grew RSS from ${fmt(before)} to ${fmt(filled)}`);
  t.ok(after - before < 40 * MB, `after destroy RSS is ${fmt(after)}, within 40 MB of ${fmt(before)} (it was ${fmt(filled)})`);
  t.equal(await daemon.stop(), 0);
});
