// Two migrations at once between the same two real agents, in opposite directions:
// each agent is the source of one and the target of the other at the same moment,
// each migration has its own id, progress and statistics, and both succeed.
// Subscribers on each agent get progress events of both domains from that agent:
// percentages never going back, `ongoing` until a last `done`.
import t, { type Test } from 'tap';
import { migrate, startPair, waitFor, type AgentProc, type MigrationRow, type ProgressEvent } from './helpers/cluster.ts';

/** 24 MiB at 8 MB/s each way: each first pass lasts about 3 s, so the two overlap. */
const SLOW = { config: { migration: { maxBandwidth: 8e6 } } };
const WORKLOAD = { 'sim-working-set': '24M', 'sim-fill': 'random', 'sim-dirty-rate': '1M' };

function checkEvents(t: Test, events: ProgressEvent[], domain: string, host: string): void {
  const mine = events.filter((e) => e.domain === domain);
  t.ok(mine.length >= 2, `${host}/${domain}: ${mine.length} progress events`);
  t.ok(mine.every((e) => e.source === host), `${host}/${domain}: each names the reporting agent`);
  t.ok(mine.every((e, i) => i === 0 || e.progress >= mine[i - 1]!.progress), `${host}/${domain}: never backwards (${mine.map((e) => e.progress).join(' ')})`);
  t.ok(mine.slice(0, -1).every((e) => e.status === 'ongoing'), `${host}/${domain}: ongoing until the end (${mine.map((e) => e.status).join(' ')})`);
  t.match(mine.at(-1), { status: 'done', progress: 100 }, `${host}/${domain}: the last says done`);
}

const running = (rows: MigrationRow[], domain: string, role: string) => rows.find((m) => m.domain === domain && m['role'] === role && m['status'] === 'active');

t.test('two domains migrate at once in opposite directions, each with its own progress and statistics', async (t) => {
  const { a, b } = await startPair(t, { a: SLOW, b: SLOW });
  await Promise.all([a.services(), b.services()]);
  await Promise.all([a.domain('ldgA', 'active', { vars: WORKLOAD }), b.domain('ldgB', 'active', { vars: WORKLOAD })]);
  const filled = (agent: AgentProc, name: string) => async () => /^(rewriting|idle)$/.test((await agent.listDomain(name))?.['sim-workload'] ?? '');
  await Promise.all([waitFor(filled(a, 'ldgA'), 20_000, 'ldgA filled'), waitFor(filled(b, 'ldgB'), 20_000, 'ldgB filled')]);
  const [onA, onB] = await Promise.all([a.progressEvents(), b.progressEvents()]);

  const [clientA, clientB] = await Promise.all([a.client(), b.client()]);
  const ab = migrate(a, b, 'ldgA', { client: clientA });
  const ba = migrate(b, a, 'ldgB', { client: clientB });

  // One moment at which each agent copies one domain out and receives the other.
  const both = await waitFor(async () => {
    const [rowsA, rowsB] = await Promise.all([a.migrations(), b.migrations()]);
    const rows = [running(rowsA, 'ldgA', 'source'), running(rowsA, 'ldgB', 'target'), running(rowsB, 'ldgB', 'source'), running(rowsB, 'ldgA', 'target')];
    return rows.every(Boolean) ? (rows as MigrationRow[]) : undefined;
  }, 15_000, 'both migrations copying at once');
  const [outA, inA, outB, inB] = both;
  t.not(outA['id'], outB['id'], 'two migrations, two ids');
  t.equal(inB['id'], outA['id'], 'beta receives alpha\'s migration');
  t.equal(inA['id'], outB['id'], 'alpha receives beta\'s migration');
  t.equal(outA['peer'], b.address, 'the source names its target as given');
  t.equal(inA['peer'], 'beta', 'the target names its source by host name');
  const flagsA = (await a.listDomain('ldgA'))!['flags'];
  const flagsB = (await a.listDomain('ldgB'))!['flags'];
  t.same([flagsA?.[5], flagsB?.[5]], ['s', 't'], `on alpha: ldgA leaving (${flagsA}), ldgB arriving (${flagsB})`);

  // Each has its own statistics: later, each has moved on by its own count.
  const later = await waitFor(async () => {
    const rows = await a.migrations();
    const x = rows.find((m) => m['id'] === outA['id']);
    const y = rows.find((m) => m['id'] === outB['id']);
    return x && y && Number(x['transferred']) > Number(outA['transferred']) && Number(y['transferred']) > Number(inA['transferred']) ? [x, y] : undefined;
  }, 10_000, 'both copies moving on');
  t.not(later[0]!['transferred'], later[1]!['transferred'], `separate byte counts (${later[0]!['transferred']}, ${later[1]!['transferred']})`);

  const [r1, r2] = await Promise.all([ab, ba]);
  t.ok(r1.ok, `ldgA migrated: ${r1.all.join(' | ')}`);
  t.ok(r2.ok, `ldgB migrated: ${r2.all.join(' | ')}`);
  t.same((await a.domainNames()).sort(), ['ldgB', 'primary'], 'alpha holds ldgB only');
  t.same((await b.domainNames()).sort(), ['ldgA', 'primary'], 'beta holds ldgA only');
  t.match(await a.listDomain('ldgB'), { state: 'active', flags: '-n----' }, 'alpha runs ldgB');
  t.match(await b.listDomain('ldgA'), { state: 'active', flags: '-n----' }, 'beta runs ldgA');
  for (const [agent, id] of [[a, outA['id']], [b, outA['id']], [a, outB['id']], [b, outB['id']]] as const) {
    const row = (await agent.migrations()).find((m) => m['id'] === id)!;
    t.match(row, { status: 'completed', progress: '100%' }, `${agent.name}: ${row.domain} completed`);
    t.ok(Number(row['transferred']) >= 24 * 2 ** 20, `${agent.name}: ${row.domain} moved its working set (${row['transferred']} bytes)`);
  }
  t.equal((await a.migrations()).find((m) => m['id'] === outA['id'])!['digest'], (await b.migrations()).find((m) => m['id'] === outA['id'])!['digest'], 'ldgA: equal digests');
  t.equal((await a.migrations()).find((m) => m['id'] === outB['id'])!['digest'], (await b.migrations()).find((m) => m['id'] === outB['id'])!['digest'], 'ldgB: equal digests');

  await waitFor(() => ['ldgA', 'ldgB'].every((d) => onA.events.some((e) => e.domain === d && e.status === 'done') && onB.events.some((e) => e.domain === d && e.status === 'done')), 5000, 'the last progress events');
  checkEvents(t, onA.events, 'ldgA', 'alpha');
  checkEvents(t, onA.events, 'ldgB', 'alpha');
  checkEvents(t, onB.events, 'ldgA', 'beta');
  checkEvents(t, onB.events, 'ldgB', 'beta');
});
