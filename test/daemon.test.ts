// The real daemon (what `npm start` runs), probed by real third-party clients:
// openssl s_client -starttls xmpp and the npm @xmpp/client library.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ARGS, startDaemon } from './helpers/daemon.ts';
import { runProgram } from './helpers/programs.ts';

const daemon = await startDaemon(t);
const ca = join(daemon.dir, 'certs', 'ca.pem');

t.test('first start creates the certificates and says how to connect', async (t) => {
  const out = daemon.stdout();
  for (const f of ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem']) t.match(out, `created ${join(daemon.dir, 'certs', f)}`);
  t.match(out, /local socket .*ldmd\.sock/);
  t.match(out, /try: openssl s_client -starttls xmpp -connect 127\.0\.0\.1:\d+ -CAfile /);
});

/** openssl s_client against the daemon; a machine without openssl fails naming its package. */
function sClient(...args: string[]) {
  return runProgram('openssl', ['s_client', '-starttls', 'xmpp', '-xmpphost', 'localhost', '-connect', `127.0.0.1:${daemon.port}`, '-brief', ...args], {
    input: '',
    timeout: 15_000,
  });
}

for (const version of ['1.2', '1.3']) {
  t.test(`openssl s_client -starttls xmpp completes TLS ${version} and verifies the server`, async (t) => {
    const r = sClient(`-tls${version.replace('.', '_')}`, '-CAfile', ca, '-verify_hostname', 'localhost', '-verify_return_error');
    const out = r.stdout + r.stderr;
    t.equal(r.status, 0, out);
    t.match(out, `Protocol version: TLSv${version}`);
    t.match(out, /CONNECTION ESTABLISHED/);
  });
}

t.test('a client limited to TLS 1.1 is refused', async (t) => {
  // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all, so the refusal is the agent's.
  const r = sClient('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0');
  const out = r.stdout + r.stderr;
  t.not(r.status, 0);
  t.match(out, /alert protocol version|unsupported protocol/);
  t.notMatch(out, /CONNECTION ESTABLISHED/);
});

t.test('@xmpp/client connects with STARTTLS and PLAIN, goes online, sends a document and reads its response', async (t) => {
  const pw = join(daemon.dir, 'stock.pw');
  writeFileSync(pw, 'stock-client-pass\n', { mode: 0o600 });
  const add = spawnSync(process.execPath, [...AGENT_ARGS, 'user', 'add', 'stock', '--role', 'read', '--password-file', pw, '--state', join(daemon.dir, 'var')], { encoding: 'utf8' });
  t.equal(add.status, 0, add.stderr);
  const fixture = new URL('./fixtures/stock-xmpp-client.mjs', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [fixture, String(daemon.port), 'stock', 'stock-client-pass'], {
    encoding: 'utf8',
    timeout: 30_000,
    // The library verifies the server certificate as Node does: trust the agent's CA.
    env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
  });
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.ok(lines.some((l) => l.status === 'online'), 'reached online');
  t.equal(lines.find((l) => l.online)?.online, 'stock@test-host/stock');
  const response = lines.find((l) => l.response)?.response ?? '';
  t.match(response, /<action>list-domain<\/action>/);
  t.match(response, /ovf:id="primary"/);
  t.match(response, /<\/cmd>\s*<response>\s*<status>success<\/status>/);
});

t.test('SIGTERM stops the daemon cleanly', async (t) => {
  const code = await daemon.stop();
  t.equal(code, 0);
  t.match(daemon.stdout(), /received SIGTERM, stopping\nstopped\n/);
});
