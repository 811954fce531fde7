// How the source logs in to the target, between real agents (child processes): a
// wrong password, a read-role user, an unreachable target, certificates not trusted
// in either direction; certificate mode (-c) succeeding. Each failure names its
// cause, leaves nothing behind on either agent, and a retry with the right
// credentials then succeeds.
import t, { type Test } from 'tap';
import { migrationMessages as M } from '../agent/messages.ts';
import { migrate, startPair, tcpProxy, trust, VIEWER, type AgentProc, type MigrateOptions } from './helpers/cluster.ts';

/** Nothing left behind: no domain of that name on the target, the source's domain as it was (no flag). */
async function untouched(t: Test, a: AgentProc, b: AgentProc, name: string, state: string): Promise<void> {
  t.equal(await b.listDomain(name), undefined, `no ${name} left on the target`);
  t.match(await a.listDomain(name), { state, flags: state === 'active' ? '-n----' : '------' }, `${name} unchanged on the source`);
}

/** The migration fails with a reason line matching every pattern, then the summary line. */
async function fails(t: Test, a: AgentProc, b: AgentProc, name: string, patterns: RegExp[], opts: MigrateOptions = {}): Promise<void> {
  const r = await migrate(a, b, name, opts);
  t.equal(r.ok, false, 'refused');
  t.equal(r.lines.length, 2, `a reason line and the summary: ${r.all.join(' | ')}`);
  t.equal(r.lines[1], M.failed(name));
  for (const p of patterns) t.match(r.lines[0] ?? '', p, `the reason matches ${p}`);
}

async function succeeds(t: Test, a: AgentProc, b: AgentProc, name: string, state: string, opts: MigrateOptions = {}): Promise<void> {
  const r = await migrate(a, b, name, opts);
  t.same({ ok: r.ok, lines: r.lines }, { ok: true, lines: [] }, `migrated: ${r.all.join(' | ')}`);
  t.equal(await a.listDomain(name), undefined, 'gone from the source');
  t.match(await b.listDomain(name), { state }, `${state} on the target`);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('trusted peers: wrong password, read role, unreachable target, then the right login; certificate mode', async (t) => {
  const { a, b } = await startPair(t);
  await Promise.all([a.services(), b.services()]);
  const small = { 'sim-working-set': '4M' };
  await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: small });
  await a.domain('ldg2', 'bound', { vcpus: 2, memory: '1G' , disks: [], vnets: [] });
  const target = new RegExp(`${esc(b.address)}|beta`);

  await fails(t, a, b, 'ldg1', [target, /not-authorized/], { password: 'not-the-password' });
  await untouched(t, a, b, 'ldg1', 'active');
  await fails(t, a, b, 'ldg1', [target, /role read/], { user: VIEWER.user, password: VIEWER.password });
  await untouched(t, a, b, 'ldg1', 'active');

  // A port where nothing listens any more: the reason names host:port.
  const proxy = await tcpProxy(t, b.port);
  await proxy.refuse();
  await fails(t, a, b, 'ldg1', [new RegExp(esc(`127.0.0.1:${proxy.port}`))], { port: proxy.port });
  await untouched(t, a, b, 'ldg1', 'active');

  await succeeds(t, a, b, 'ldg1', 'active');
  t.match(await b.listDomain('ldg1'), { flags: '-n----' });

  // -c: alpha logs in with its server certificate (CN alpha), a write user on beta.
  await succeeds(t, a, b, 'ldg2', 'bound', { options: ['-c'] });
});

t.test('untrusted certificates: the target\'s (password login), then the source\'s (-c); trusted, both succeed', async (t) => {
  const { a, b } = await startPair(t, { trust: false });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'bound', { vcpus: 2, memory: '1G', disks: [], vnets: [] });
  await a.domain('ldg2', 'bound', { vcpus: 2, memory: '1G', disks: [], vnets: [] });

  // alpha does not trust beta's CA: the reason names beta's certificate.
  await fails(t, a, b, 'ldg1', [/\bbeta\b/, /not trusted/]);
  await untouched(t, a, b, 'ldg1', 'bound');
  await fails(t, a, b, 'ldg2', [/\bbeta\b/, /not trusted/], { options: ['-c'] });
  await untouched(t, a, b, 'ldg2', 'bound');

  trust(a, b);
  await a.restart();
  await succeeds(t, a, b, 'ldg1', 'bound');

  // beta does not trust alpha's CA: with -c the reason names alpha's certificate.
  await fails(t, a, b, 'ldg2', [/\balpha\b/, /not trusted/], { options: ['-c'] });
  await untouched(t, a, b, 'ldg2', 'bound');
  trust(b, a);
  await b.restart();
  await succeeds(t, a, b, 'ldg2', 'bound', { options: ['-c'] });
});
