// Faults during a migration between two real agents (child processes): the target
// killed during the copy; the connection cut in the handoff window, after the
// target resumed (settled automatically: the domain is the target's) and before it
// resumed (the target cleans up; cancel-operation restores the source, on the
// operator's word (-f) while the target cannot be reached, after asking it once it can);
// the source killed during the copy. After each: the domain exists, complete, on
// exactly one agent (or in the error state on the source, its guest paused), and a
// retry succeeds.
import t, { type Test } from 'tap';
import { migrationMessages as mmsg, migrationModelMessages as mm, migrationRunMessages as rm } from '../agent/messages.ts';
import { messages, ok } from './helpers/session.ts';
import { migrate, startPair, tcpProxy, waitFor, type AgentProc } from './helpers/cluster.ts';
import { absent, cancelXml, column6, logged, migrateOk, rowById, runsHere, waitHeld, waitPhase } from './helpers/faults.ts';

const WORKING_SET = { 'sim-working-set': '24M', 'sim-fill': 'random', 'sim-dirty-rate': '2M' };
/** 24 MiB at 8 MB/s: the first pass lasts about 3 s, long enough to strike in the middle. */
const SLOW = { config: { migration: { maxBandwidth: 8e6 } } };

const lostDuring = (target: string, phase: string) => new RegExp(`^${escape(rm.peerLost(target, phase, '@@')).replace('@@', '.+')}$`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Wait until the working set is filled and the copy is under way with at least 2 MB sent; the source's row. */
async function midCopy(a: AgentProc) {
  return waitFor(async () => {
    const m = (await a.migrations()).find((r) => r.domain === 'ldg1' && r['status'] === 'active');
    return m && Number(m['transferred']) > 2e6 ? m : undefined;
  }, 20_000, 'the copy under way');
}

async function filled(a: AgentProc): Promise<void> {
  await waitFor(async () => /^(rewriting|idle)$/.test((await a.listDomain('ldg1'))?.['sim-workload'] ?? ''), 20_000, 'the working set filled');
}

/** Cancel, asking again while an automatic settle attempt of the same domain happens to be running. */
async function cancelMigration(a: AgentProc, force = false) {
  for (;;) {
    const r = await a.request(cancelXml('ldg1', force));
    if (ok(r) || !messages(r).includes(rm.settleBusy('ldg1'))) return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

t.test('the target killed during the copy: the source runs on; the restarted target has nothing; the retry succeeds', async (t) => {
  const { a, b } = await startPair(t, { a: SLOW });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vars: WORKING_SET });
  await filled(a);
  const pending = migrate(a, b, 'ldg1', { client: await a.client() });
  const row = await midCopy(a);
  t.equal(column6((await b.listDomain('ldg1'))?.['flags']), 't', 'the target is receiving');
  await b.kill();

  const r = await pending;
  t.equal(r.ok, false, 'migrate-domain fails');
  t.equal(r.lines.length, 2, `two lines: ${r.lines.join(' | ')}`);
  t.match(r.lines[0], lostDuring(b.address, 'the memory copy'), 'the reason names the lost connection');
  t.equal(r.lines[1], mmsg.failed('ldg1'), 'then the summary line');
  await runsHere(t, a, 'ldg1', 'target killed');
  t.match(await rowById(a, row['id']!), { status: 'failed' }, 'list-migrations: failed');

  await b.start();
  await absent(t, b, 'ldg1', 'restarted target');
  t.ok(logged(b, mm.startTargetRemoved('ldg1', 'alpha', row['id']!)), 'the restarted target removed the half-received domain at its start');
  await migrateOk(t, a, b, 'ldg1', 'the retry');
  await absent(t, a, 'ldg1', 'after the retry');
  t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the target runs it');
});

t.test('cut after the target resumed (held at confirm): error state on the source, then settled by itself', async (t) => {
  const { a, b } = await startPair(t, { b: { env: { LDM_AGENT_TEST_HOLD: 'confirm' } } });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vars: { 'sim-working-set': '8M' } });
  const proxy = await tcpProxy(t, b.port);
  const via = `127.0.0.1:${proxy.port}`;
  const pending = migrate(a, b, 'ldg1', { port: proxy.port, client: await a.client() });
  await waitHeld(b, 'confirm');
  const held = await waitPhase(a, 'ldg1', 'handoff');
  t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the target runs the domain, its confirmation held');

  proxy.cut();
  const r = await pending;
  t.equal(r.ok, false, 'migrate-domain fails');
  t.match(r.lines[0], lostDuring(via, 'the handoff'), `the reason: ${r.lines[0]}`);
  t.equal(r.lines[1], mmsg.failed('ldg1'), 'then the summary line');
  const err = (await a.listDomain('ldg1'))!;
  t.equal(column6(err['flags']), 'e', `the source is in the error state (flags ${err['flags']})`);
  t.equal(err['sim-workload'], 'stopped', 'its guest stays paused: never running on both');
  t.match(await rowById(a, held['id']!), { status: 'error' }, 'list-migrations: error');

  // The proxy still forwards: the source asks the target, which runs the domain.
  await waitFor(async () => (await a.listDomain('ldg1')) === undefined, 8000, 'the source settled');
  t.ok(logged(a, rm.settledCompleted('ldg1', via)), 'the source logged how it settled');
  t.match(await rowById(a, held['id']!), { status: 'completed' }, 'list-migrations: completed once settled');
  t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the target runs it');
  t.match((await b.listDomain('ldg1'))?.['sim-workload'], /^(filling|rewriting|idle)$/, 'its guest works');
});

t.test('cut before the target resumed (held at handoff), proxy refusing: the target cleans up; cancel-operation restores the source', async (t) => {
  const { a, b } = await startPair(t, { b: { env: { LDM_AGENT_TEST_HOLD: 'handoff' } } });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vars: { 'sim-working-set': '8M' } });
  const proxy = await tcpProxy(t, b.port);
  const via = `127.0.0.1:${proxy.port}`;
  const settleFailures = () => (a.stdout() + a.stderr()).split(`cannot settle ldg1 with ${via} yet: `).length - 1;

  /** Migrate through the proxy, held at the target's handoff, then refuse and cut: the error state. Its row id. */
  const lose = async (t: Test, nth: number): Promise<string> => {
    const pending = migrate(a, b, 'ldg1', { port: proxy.port, client: await a.client() });
    await waitHeld(b, 'handoff', nth);
    const held = await waitPhase(a, 'ldg1', 'handoff');
    t.equal(column6((await b.listDomain('ldg1'))?.['flags']), 't', 'the target holds the domain, not resumed');
    await proxy.refuse();
    proxy.cut();
    const r = await pending;
    t.same({ ok: r.ok, n: r.lines.length }, { ok: false, n: 2 }, `migrate-domain fails: ${r.lines.join(' | ')}`);
    t.match(r.lines[0], lostDuring(via, 'the handoff'), 'the reason names the lost handoff');
    const err = (await a.listDomain('ldg1'))!;
    t.equal(column6(err['flags']), 'e', `the source is in the error state (flags ${err['flags']})`);
    t.equal(err['sim-workload'], 'stopped', 'its guest stays paused');
    t.match(await rowById(a, held['id']!), { status: 'error' }, 'list-migrations: error');
    await waitFor(async () => (await b.listDomain('ldg1')) === undefined, 5000, 'the target removed its half-received domain');
    t.match(await rowById(b, held['id']!), { role: 'target', status: 'failed' }, 'the target lists it failed');
    return held['id']!;
  };

  await t.test('cancel while the target cannot be reached: refused; with -f restored on the operator\'s word', async (t) => {
    const id = await lose(t, 1);
    const refused = await cancelMigration(a);
    t.equal(ok(refused), false, 'cancel-operation without -f is refused: the target may run the domain');
    t.match(messages(refused)[0], new RegExp(`^${escape(rm.settleUnreachable('ldg1', via, '@@')).replace('@@', '.+')}$`), `the refusal says why and how: ${messages(refused)[0]}`);
    t.equal(column6((await a.listDomain('ldg1'))?.['flags']), 'e', 'still in the error state');
    const c = await cancelMigration(a, true);
    t.ok(ok(c), `cancel-operation -f succeeds: ${messages(c).join(' | ')}`);
    await runsHere(t, a, 'ldg1', 'restored');
    const row = (await rowById(a, id))!;
    t.equal(row['status'], 'failed', 'list-migrations: failed (restored)');
    t.match(row['error'], new RegExp(`^${escape(rm.settledManually('ldg1', via, '@@')).replace('@@', '.+')}$`), `restored without asking: ${row['error']}`);
  });

  await t.test('cancel once the target can be reached again: restored after asking it', async (t) => {
    await proxy.accept();
    const id = await lose(t, 2);
    // Right after an automatic attempt failed (the next is 2 s away), let the proxy forward again and cancel.
    const before = settleFailures();
    await waitFor(() => settleFailures() > before, 5000, 'an automatic settle attempt failed');
    await proxy.accept();
    const c = await cancelMigration(a);
    t.ok(ok(c), `cancel-operation succeeds: ${messages(c).join(' | ')}`);
    await runsHere(t, a, 'ldg1', 'restored');
    t.match(await rowById(a, id), { status: 'failed', error: rm.settledRestored('ldg1', via) }, 'restored after the target said it does not run it');
  });

  await t.test('the retry succeeds', async (t) => {
    await b.stop();
    await b.start({ env: {} });
    await absent(t, b, 'ldg1', 'before the retry');
    await migrateOk(t, a, b, 'ldg1', 'the retry');
    await absent(t, a, 'ldg1', 'after the retry');
    t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the target runs it');
  });
});

t.test('the source killed during the copy and restarted: its domain runs (no error state), the target cleaned up; the retry succeeds', async (t) => {
  const { a, b } = await startPair(t, { a: SLOW });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vars: WORKING_SET });
  await filled(a);
  void migrate(a, b, 'ldg1', { client: await a.client() }).catch(() => {});
  const row = await midCopy(a);
  t.equal(column6((await b.listDomain('ldg1'))?.['flags']), 't', 'the target is receiving');
  await a.kill();
  await waitFor(async () => (await b.listDomain('ldg1')) === undefined, 5000, 'the target removed its half-received domain');
  t.match(await rowById(b, row['id']!), { role: 'target', status: 'failed' }, 'the target lists it failed');

  await a.start();
  await runsHere(t, a, 'ldg1', 'restarted source');
  t.equal((await a.listDomain('ldg1'))?.['flags'], '-n----', 'flags -n----: not in the error state');
  t.ok(logged(a, mm.startSourceCleared('ldg1', b.address, row['id']!, 'precopy')), 'the restarted source cleared the record at its start');
  await migrateOk(t, a, b, 'ldg1', 'the retry');
  await absent(t, a, 'ldg1', 'after the retry');
  t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the target runs it');
});
