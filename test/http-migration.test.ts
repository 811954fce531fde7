// The web app around real migrations between two agents (child processes): a live
// migration's figures in /api/migrations and /metrics, and a migration held in
// pre-copy cancelled through POST /api/migrations/:domain/cancel.
import t from 'tap';
import { ADMIN, VIEWER, migrate, startPair, waitFor, type AgentProc } from './helpers/cluster.ts';
import { waitHeld } from './helpers/faults.ts';

const HTTP = ['--http', '127.0.0.1:0'];
const { a, b } = await startPair(t, { a: { args: HTTP } });
await Promise.all([a.services(), b.services()]);
await a.domain('ldg1', 'active', { vcpus: 4, memory: '256M', vars: { 'sim-working-set': '8M', 'sim-dirty-rate': '1M' } });

const webOf = (agent: AgentProc): string => {
  const m = /web app: (http:\/\/127\.0\.0\.1:\d+)\//.exec(agent.stdout());
  if (!m) throw new Error(`no web address in:\n${agent.stdout()}`);
  return m[1]!;
};
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** /metrics as sample name (with labels) -> value. */
async function metrics(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/i.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

t.test('a live migration: its statistics in /api/migrations, its figures in /metrics', async (t) => {
  const r = await migrate(a, b, 'ldg1');
  t.ok(r.ok, r.all.join('\n'));
  const base = webOf(a);
  const { migrations } = (await (await fetch(`${base}/api/migrations`)).json()) as { migrations: Record<string, unknown>[] };
  t.equal(migrations.length, 1);
  const m = migrations[0]!;
  t.match(m, { domain: 'ldg1', role: 'source', status: 'completed', phase: 'done', progress: 100, finished: true });
  t.ok((m['downtime'] as number) > 0 && (m['downtime'] as number) < 5000, `downtime ${m['downtime']} ms`);
  t.ok((m['transferred'] as number) > 8 * 1024 * 1024, `transferred ${m['transferred']} bytes`);

  const s = await metrics(base);
  t.equal(s.get('ldm_migrations_total{result="completed"}'), 1);
  t.equal(s.get('ldm_migration_bytes_total'), m['transferred']);
  t.equal(s.get('ldm_migration_downtime_seconds_count'), 1);
  t.equal(s.get('ldm_migration_duration_seconds_count'), 1);
  t.equal(s.get('ldm_domains{state="active"}'), 1, 'only the primary is left active here');
  t.equal(s.get('ldm_xml_requests_total{action="migrate-domain",status="success"}'), 1, 'the XML side: the migrate-domain command counted');
  t.equal(s.get('ldm_xml_request_duration_seconds_count{action="migrate-domain"}'), 1, 'and timed');
  t.ok((s.get('ldm_xml_request_duration_seconds_sum{action="migrate-domain"}') ?? 0) > 0.01, 'as long as the migration took');
  t.ok((s.get('ldm_connections') ?? 0) >= 1, `the connections open on the XML interface (${s.get('ldm_connections')})`);
  t.equal((await metrics(base)).get('ldm_migrations_total{result="completed"}'), 1, 'counted once across scrapes');
  // Back home for the next test.
  t.ok((await migrate(b, a, 'ldg1')).ok);
});

t.test('cancel through the web app: a held migration is rolled back', async (t) => {
  await a.stop();
  await a.start({ env: { LDM_AGENT_TEST_HOLD: 'precopy' }, args: HTTP });
  const base = webOf(a);
  const pending = migrate(a, b, 'ldg1', { client: await a.client() });
  await waitHeld(a, 'precopy');
  const running = await waitFor(
    async () => ((await (await fetch(`${base}/api/migrations`)).json()) as { migrations: Record<string, unknown>[] }).migrations.find((m) => !m['finished']),
    10_000,
    'a running migration in /api/migrations',
  );
  t.match(running, { domain: 'ldg1', role: 'source', status: 'active', phase: 'precopy' });

  const cancel = (auth: string) => fetch(`${base}/api/migrations/ldg1/cancel`, { method: 'POST', headers: { authorization: auth } });
  t.equal((await cancel(basic(VIEWER.user, VIEWER.password))).status, 403, 'the read role may not');
  const res = await cancel(basic(ADMIN.user, ADMIN.password));
  t.equal(res.status, 200);
  t.same(await res.json(), { cancelled: 'ldg1' });
  const r = await pending;
  t.equal(r.ok, false, 'the migration request fails');
  const s = await metrics(base);
  t.equal(s.get('ldm_migrations_total{result="cancelled"}'), 1);
  const d = (await (await fetch(`${base}/api/domains/ldg1`)).json()) as Record<string, unknown>;
  t.match(d, { state: 'active', migration: null }, 'the guest runs on at the source');
});
