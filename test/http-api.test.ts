// The web app's JSON API, headers, bounds, cancel with HTTP Basic, the login
// rate limit and /metrics, over real HTTP against an agent in this process.
import { request as httpsRequest } from 'node:https';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { objectMessages } from '../agent/messages.ts';
import { DEFAULT_CONFIG } from '../agent/config.ts';
import { startAgent } from '../agent/daemon.ts';
import { createLogger } from '../agent/log.ts';
import { isLoopback, LoginLimiter } from '../agent/http/api.ts';
import { createHttpServer, MAX_BODY_BYTES } from '../agent/http/server.ts';
import { startTestAgent, stateDirs } from './helpers/agent.ts';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function web(t: Test, limiter = new LoginLimiter(3, 60_000)) {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-pw'], ['viewer', 'read', 'viewer-pw']] });
  const server = await createHttpServer({ ...agent, log: createLogger('error', 'test', () => {}) }, { listen: { host: '127.0.0.1', port: 0 }, limiter });
  t.teardown(() => server.close());
  return { agent, base: `http://127.0.0.1:${server.address.port}` };
}

t.test('domains, one domain, migrations and health as JSON', async (t) => {
  const { agent, base } = await web(t);
  await agent.ldm.addDomain('ldg1', {}, { vcpus: 4, memory: 256 * 1024 * 1024 });

  const all = await fetch(`${base}/api/domains`);
  t.equal(all.status, 200);
  t.match(all.headers.get('content-type'), /^application\/json/);
  const body = (await all.json()) as { machine: { strands: { total: number; used: number } }; domains: { name: string; state: string; flags: string; vcpus: number }[] };
  t.same(body.domains.map((d) => d.name), ['primary', 'ldg1']);
  t.match(body.domains[0], { state: 'active', flags: '-n-c--' });
  t.match(body.domains[1], { name: 'ldg1', state: 'inactive', vcpus: 4, memory: 256 * 1024 * 1024, bound: null });
  t.ok(body.machine.strands.used > 0 && body.machine.strands.used < body.machine.strands.total, 'the primary holds some strands, not all');

  const one = await fetch(`${base}/api/domains/ldg1`);
  t.match(await one.json(), { name: 'ldg1', state: 'inactive', migration: null });

  const missing = await fetch(`${base}/api/domains/nosuch`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: { code: 'LDM_ERR_HTTP_NOT_FOUND', message: 'LDom nosuch does not exist' } });

  const route = await fetch(`${base}/api/nothing-here`);
  t.equal(route.status, 404);
  t.match(await route.json(), { error: { code: 'LDM_ERR_HTTP_NOT_FOUND' } });

  const migrations = await fetch(`${base}/api/migrations`);
  t.same(await migrations.json(), { migrations: [] });

  const health = await fetch(`${base}/healthz`);
  t.match(await health.json(), { status: 'ok', hostname: 'test-host' });
});

t.test('security headers: a CSP of self only, nosniff, no framework banner', async (t) => {
  const { base } = await web(t);
  const res = await fetch(`${base}/api/domains`);
  const csp = res.headers.get('content-security-policy') ?? '';
  t.match(csp, /script-src 'self'(;|$)/);
  t.match(csp, /style-src 'self'(;|$)/);
  t.notMatch(csp, /unsafe-inline|https:/, 'no inline code and no other origin');
  t.notMatch(csp, /upgrade-insecure-requests/, 'plain HTTP: the page would otherwise ask for an HTTPS port that does not exist');
  t.equal(res.headers.get('x-content-type-options'), 'nosniff');
  t.equal(res.headers.get('x-powered-by'), null);
});

t.test('a request body over the bound is refused with 413 in JSON; bad JSON with 400', async (t) => {
  const { base } = await web(t);
  const big = await fetch(`${base}/api/migrations/ldg1/cancel`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basic('admin', 'admin-pw') },
    body: JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) }),
  });
  t.equal(big.status, 413);
  t.match(await big.json(), { error: { code: 'LDM_ERR_HTTP_BODY_TOO_LARGE' } });
  const bad = await fetch(`${base}/api/migrations/ldg1/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  t.equal(bad.status, 400);
  t.same(await bad.json(), { error: { code: 'LDM_ERR_HTTP_BAD_REQUEST', message: 'the request body is not valid JSON' } });
});

t.test('cancel: Basic needed, the write role needed, the agent answers in JSON', async (t) => {
  const { agent, base } = await web(t);
  await agent.ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 128 * 1024 * 1024 });
  const cancel = (name: string, auth?: string) => fetch(`${base}/api/migrations/${name}/cancel`, { method: 'POST', headers: auth ? { authorization: auth } : {} });

  const none = await cancel('ldg1');
  t.equal(none.status, 401);
  t.match(none.headers.get('www-authenticate'), /^Basic realm="ldm-agent"/);
  t.match(await none.json(), { error: { code: 'LDM_ERR_HTTP_UNAUTHORIZED' } });

  const reader = await cancel('ldg1', basic('viewer', 'viewer-pw'));
  t.equal(reader.status, 403);
  t.match(await reader.json(), { error: { code: 'LDM_ERR_HTTP_FORBIDDEN' } });

  const idle = await cancel('ldg1', basic('admin', 'admin-pw'));
  t.equal(idle.status, 409);
  const answer = (await idle.json()) as { error: { code: string; message: string } };
  t.equal(answer.error.code, 'LDM_ERR_HTTP_CONFLICT');
  t.equal(answer.error.message, objectMessages.noMigration('ldg1'), "the agent's own message");

  const unknown = await cancel('nosuch', basic('admin', 'admin-pw'));
  t.equal(unknown.status, 404);
  t.match(await unknown.json(), { error: { code: 'LDM_ERR_HTTP_NOT_FOUND' } });

  const text = JSON.stringify(await (await fetch(`${base}/api/domains`)).json());
  t.notMatch(text, /admin-pw|viewer-pw|scrypt/, 'no secret in any answer');
});

t.test('failed Basic logins from one address are rate-limited with 429 and Retry-After', async (t) => {
  const { base } = await web(t, new LoginLimiter(3, 60_000));
  const cancel = (auth: string) => fetch(`${base}/api/migrations/primary/cancel`, { method: 'POST', headers: { authorization: auth } });
  for (let i = 0; i < 3; i++) t.equal((await cancel(basic('admin', 'wrong'))).status, 401, `failure ${i + 1}`);
  const limited = await cancel(basic('admin', 'admin-pw'));
  t.equal(limited.status, 429, 'even the right password waits');
  const wait = Number(limited.headers.get('retry-after'));
  t.ok(wait > 0 && wait <= 60, `Retry-After ${wait}`);
  t.match(await limited.json(), { error: { code: 'LDM_ERR_HTTP_TOO_MANY_LOGINS' } });
});

t.test('the login limiter forgets after its window and stays bounded', async (t) => {
  let now = 0;
  const limiter = new LoginLimiter(2, 1000, 3, () => now);
  limiter.fail('a');
  limiter.fail('a');
  t.equal(limiter.retryAfter('a'), 1);
  now = 1001;
  t.equal(limiter.retryAfter('a'), 0, 'the window passed');
  for (const a of ['b', 'c', 'd', 'e']) {
    limiter.fail(a);
    limiter.fail(a);
  }
  t.equal(limiter.retryAfter('b'), 0, 'the oldest address was dropped to keep the map at 3');
  t.equal(limiter.retryAfter('e'), 1);
});

t.test('cancel over plain HTTP on a non-loopback address is refused before any login', async (t) => {
  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  t.equal(isLoopback('127.0.0.5'), true);
  t.equal(isLoopback('::ffff:127.0.0.1'), true);
  t.equal(isLoopback('::1'), true);
  t.equal(isLoopback('192.0.2.2'), false);
  if (!external) return; // A machine with only a loopback interface: the address checks above are all we can do.
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-pw']] });
  const server = await createHttpServer({ ...agent, log: createLogger('error', 'test', () => {}) }, { listen: { host: external, port: 0 } });
  t.teardown(() => server.close());
  const res = await fetch(`http://${external}:${server.address.port}/api/migrations/primary/cancel`, { method: 'POST', headers: { authorization: basic('admin', 'admin-pw') } });
  t.equal(res.status, 403);
  t.match(await res.json(), { error: { code: 'LDM_ERR_HTTP_INSECURE' } });
  t.equal((await fetch(`http://${external}:${server.address.port}/api/domains`)).status, 200, 'reading needs no login');
});

t.test('/metrics is Prometheus text with the domain gauge and the migration figures', async (t) => {
  const { agent, base } = await web(t);
  await agent.ldm.addDomain('ldg1', {}, { vcpus: 2, memory: 128 * 1024 * 1024 });
  const res = await fetch(`${base}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/i.exec(line);
    if (!m) t.fail(`not a Prometheus sample line: ${line}`);
    else samples.set(m[1]!, Number(m[2]));
  }
  t.equal(samples.get('ldm_domains{state="active"}'), 1);
  t.equal(samples.get('ldm_domains{state="inactive"}'), 1);
  t.equal(samples.get('ldm_domains{state="bound"}'), 0);
  t.equal(samples.get('ldm_migration_bytes_total'), 0);
  t.equal(samples.get('ldm_migration_downtime_seconds_count'), 0);
  t.equal(samples.get('ldm_event_subscribers'), 0, "the metrics' own subscription is not counted");
  t.ok(samples.has('process_cpu_user_seconds_total'), 'default process metrics');
  t.match(text, /# TYPE ldm_migrations_total counter/);
});

t.test('the daemon starts the web app (HTTPS with --http-tls) and goes on when its port is taken', async (t) => {
  const dirs = stateDirs(t, 'ldm-agent-http-');
  const base = { ...DEFAULT_CONFIG, listen: { host: '127.0.0.1', port: 0 }, hostname: 'web-host', discovery: false };
  const lines: string[] = [];
  const a = await startAgent({ ...base, http: { host: '127.0.0.1', port: 0 }, httpTls: true, state: dirs(), certs: dirs() }, (l) => lines.push(l), createLogger('error', 'test', () => {}));
  t.teardown(() => a.stop());
  t.ok(a.http, 'the web app runs');
  t.ok(lines.includes(`web app: https://127.0.0.1:${a.http!.address.port}/ (--http off to stop)`), lines.join('\n'));
  const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: a.http!.address.port, path: '/healthz', ca: readFileSync(a.certPaths.ca), servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(health.status, 200);
  t.match(JSON.parse(health.body), { status: 'ok', hostname: 'web-host' });

  const warnings: string[] = [];
  const b = await startAgent({ ...base, http: { host: '127.0.0.1', port: a.http!.address.port }, state: dirs(), certs: dirs() }, () => {}, createLogger('warn', 'test', (l) => warnings.push(l)));
  t.teardown(() => b.stop());
  t.equal(b.http, null, 'no web app on a taken port');
  t.match(warnings.join('\n'), /web app: cannot listen on 127\.0\.0\.1:\d+ \(.*EADDRINUSE.*\); the agent runs on without it/);
  t.ok(b.address.port > 0, 'the XML interface runs');
});
