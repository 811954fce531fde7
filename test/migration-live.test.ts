// Live migration between two real agents (child processes): a running guest with a
// busy workload moves, its memory verified by digest; afterwards the source has no
// such domain and the target runs it (-n----); both agents list the migration
// completed with equal digests and sane statistics, and send progress events that
// never go backwards and end `done`. The client that asked may leave: the migration
// belongs to the agents. Then, held at a point of the copy: what the flags, listings
// and refusals show while a migration runs.
import t, { type Test } from 'tap';
import { cpu, data, request } from './helpers/requests.ts';
import { migrate, migrateXml, startPair, waitFor, type ProgressEvent } from './helpers/cluster.ts';

const MiB = 2 ** 20;

/** Progress events of one domain: percentages never decreasing, `ongoing` until a last `done`, from `source`. */
function checkEvents(t: Test, events: ProgressEvent[], domain: string, source: string): void {
  const mine = events.filter((e) => e.domain === domain);
  t.ok(mine.length >= 2, `${source}: ${mine.length} progress events`);
  t.same(mine.map((e) => e.source), mine.map(() => source), `${source}: each names the reporting agent`);
  t.ok(mine.every((e, i) => i === 0 || e.progress >= mine[i - 1]!.progress), `${source}: never backwards (${mine.map((e) => e.progress).join(' ')})`);
  t.same(mine.slice(0, -1).map((e) => e.status), mine.slice(0, -1).map(() => 'ongoing'), `${source}: ongoing until the end`);
  t.match(mine.at(-1), { status: 'done', progress: 100 }, `${source}: the last says done`);
}


t.test('a running guest with a busy workload migrates; the requester leaving does not cancel it', async (t) => {
  // The copy is slowed to 48 MB/s so it is still running when the requester leaves.
  const { a, b } = await startPair(t, { a: { config: { migration: { maxBandwidth: 48_000_000 } } } });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '64M', 'sim-fill': 'random', 'sim-dirty-rate': '16M' } });
  // Migrate once the working set is filled: then at least its 64 MiB must travel.
  await waitFor(async () => (await a.listDomain('ldg1'))?.['sim-workload'] === 'rewriting', 20_000, 'the working set filled');
  const before = (await a.listDomain('ldg1'))!;
  const filled = Number(before['sim-filled']);
  t.equal(filled, 64 * MiB, 'the whole working set is filled');

  const [onA, onB] = await Promise.all([a.progressEvents(), b.progressEvents()]);
  const requester = await a.client();
  let answered = false;
  // Once closed, the client drops what it waited for: this request never settles.
  void requester.request(migrateXml('ldg1', b.address)).then(
    () => (answered = true),
    () => (answered = true),
  );
  const running = await waitFor(async () => {
    const m = await a.migration('ldg1');
    return m && m['status'] !== 'setup' && m['status'] !== 'completed' ? m : undefined;
  }, 10_000, 'the migration under way');
  t.match(running, { role: 'source', status: 'active' }, 'copying when the requester leaves');
  t.equal(answered, false, 'no answer yet when the requester leaves');
  await requester.close();

  const done = await waitFor(async () => {
    const m = await a.migration('ldg1');
    return m && m['status'] !== 'active' && m['status'] !== 'setup' && m['status'] !== 'device' ? m : undefined;
  }, 30_000, 'the migration ended');
  t.equal(done['status'], 'completed', `completed without the requester: ${done['error'] ?? ''}`);

  t.equal(await a.listDomain('ldg1'), undefined, 'the source has no ldg1');
  const there = await b.listDomain('ldg1');
  t.match(there, { state: 'active', flags: '-n----', softstate: 'Solaris running' }, 'the target runs ldg1');
  t.ok(Number(there!['uptime']) >= Number(before['uptime']), `its uptime goes on across the migration (${before['uptime']} s before, ${there!['uptime']} s after)`);
  t.match(there?.['sim-workload'], /^(filling|rewriting|idle)$/, 'its guest works on');

  const src = (await a.migration('ldg1'))!;
  const dst = (await b.migration('ldg1'))!;
  t.match(src, { role: 'source', status: 'completed', phase: 'done' });
  t.match(dst, { role: 'target', status: 'completed', phase: 'done' });
  t.match(src['digest'], /^[0-9a-f]+$/, 'the source has a digest');
  t.equal(dst['digest'], src['digest'], 'both sides hold the same memory');
  const n = (k: string) => Number(src[k]);
  t.ok(n('transferred') >= filled, `transferred ${n('transferred')} >= ${filled} filled bytes`);
  t.ok(n('iterations') >= 1, `iterations ${n('iterations')}`);
  t.ok(n('downtime') > 0 && n('downtime') < n('total-time'), `downtime ${n('downtime')} ms within total-time ${n('total-time')} ms`);
  t.ok(n('normal-pages') >= filled / 8192, `normal pages ${n('normal-pages')}`);
  t.equal(n('remaining'), 0, 'nothing remaining');

  await waitFor(() => onA.events.some((e) => e.status === 'done') && onB.events.some((e) => e.status === 'done'), 5000, 'the last progress events');
  checkEvents(t, onA.events, 'ldg1', 'alpha');
  checkEvents(t, onB.events, 'ldg1', 'beta');
});

t.test('while it runs (held after the first pass): flags, operation, progress, peers; changes and a second migration refused', async (t) => {
  const { a, b } = await startPair(t, { a: { env: { LDM_AGENT_TEST_HOLD: 'precopy' } } });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '8M' } });
  await waitFor(async () => (await a.listDomain('ldg1'))?.['sim-workload'] === 'idle', 10_000, 'the working set filled');
  const pending = migrate(a, b, 'ldg1', { client: await a.client() });

  const held = await waitFor(async () => {
    const m = await a.migration('ldg1');
    return m?.['phase'] === 'precopy' && Number(m['iterations']) >= 1 ? m : undefined;
  }, 15_000, 'the source done with its first pass');
  t.match(held, { role: 'source', status: 'active', iterations: '1' });
  await new Promise((r) => setTimeout(r, 300));
  t.match(await a.migration('ldg1'), { phase: 'precopy', iterations: '1', status: 'active' }, 'and held there');
  const src = (await a.listDomain('ldg1'))!;
  t.equal(src['flags']?.[5], 's', `source flags ${src['flags']}`);
  t.equal(src['operation'], 'migration');
  t.match(src['progress'], /^\d{1,3}%$/);
  t.equal(src['target'], held['peer'], 'the source names its target');
  const dst = (await b.listDomain('ldg1'))!;
  t.equal(dst?.['flags']?.[5], 't', `target flags ${dst?.['flags']}`);
  t.equal(dst?.['operation'], 'migration');
  t.ok(dst?.['source'], `the target names its source: ${dst?.['source']}`);
  t.match(await b.migration('ldg1'), { role: 'target' });

  const change = await a.refusal(request('set-vcpu', data('ldg1', cpu(16))));
  t.match(change, /migrat/i, `a change is refused: ${change}`);
  const again = await migrate(a, b, 'ldg1');
  t.equal(again.ok, false, `a second migration is refused: ${again.all.join(' | ')}`);
  t.match(again.all.join(' '), /in progress/);

  // The hold ends with a cancel: the guest runs on at the source, the target is clean.
  await a.must(request('cancel-operation', data('ldg1'), 'migration'));
  const first = await pending;
  t.equal(first.ok, false, `the held migration ends failed: ${first.all.join(' | ')}`);
  await waitFor(async () => (await b.listDomain('ldg1')) === undefined, 5000, 'the target clean');
  t.match(await a.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the source runs on');
});
