// Who gets in over TCP: passwords (SASL PLAIN), client certificates (SASL EXTERNAL),
// roles on every action, and slowed-down guessing.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCerts, issueClientCert, trustCert } from '../agent/auth/certs.ts';
import { ClientError, LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { AGENT_ARGS } from './helpers/daemon.ts';
import { LIST_DOMAIN } from './helpers/raw.ts';

const agent = await startTestAgent(t, {
  users: [
    ['ops', 'write', 'ops-password-1'],
    ['viewer', 'read', 'viewer-password-2'],
    ['alice', 'read', 'alice-unused-password'],
  ],
});
const ca = readFileSync(agent.certPaths.ca, 'utf8');
const connect = (auth: Parameters<typeof LdmClient.connect>[0]['auth'], extra: Partial<Parameters<typeof LdmClient.connect>[0]> = {}) =>
  LdmClient.connect({ host: '127.0.0.1', port: agent.port, auth, ca, servername: 'localhost', ...extra });

async function refusal(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ClientError) return err;
    throw err;
  }
  throw new Error('expected the login to be refused');
}

t.test('PLAIN login verifies the server certificate against our CA and reaches online', async (t) => {
  const c = await connect({ kind: 'password', user: 'ops', password: 'ops-password-1' });
  t.equal(c.jid, 'ops@test-host/ldm');
  t.equal((await c.request(LIST_DOMAIN)).response?.status, 'success');
  await c.close();
});

t.test('EXTERNAL login with a certificate from `ldm-agent certs issue`', async (t) => {
  const out = join(agent.dir, 'alice-cert');
  const r = spawnSync(process.execPath, [...AGENT_ARGS, 'certs', 'issue', 'alice', '--out', out, '--certs', agent.certPaths.dir], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const c = await connect({ kind: 'certificate' }, { cert: readFileSync(join(out, 'alice.pem'), 'utf8'), key: readFileSync(join(out, 'alice-key.pem'), 'utf8') });
  t.equal(c.jid, 'alice@test-host/ldm', 'the certificate CN names the user');
  const listed = await c.request(LIST_DOMAIN);
  t.equal(listed.response?.status, 'success');
  const refused = await c.request('<LDM_interface version="1.3"><cmd><action>add-domain</action><data version="3.0"><Envelope><Content ovf:id="x"/></Envelope></data></cmd></LDM_interface>');
  t.equal(refused.response?.status, 'failure', 'alice has the read role through her certificate too');
  await c.close();
});

t.test('a certificate from another CA is refused, naming what mismatched', async (t) => {
  const otherDir = join(agent.dir, 'other-ca');
  await ensureCerts(otherDir, { hostnames: ['elsewhere'] });
  const issued = await issueClientCert(otherDir, 'alice', join(otherDir, 'out'));
  const other = { cert: readFileSync(issued.cert, 'utf8'), key: readFileSync(issued.key, 'utf8') };
  const err = await refusal(connect({ kind: 'certificate' }, { cert: other.cert, key: other.key }));
  t.equal(err.condition, 'not-authorized');
  t.match(err.message, /client certificate CN=alice issued by CN=ldm-agent CA elsewhere is not trusted/);
  t.match(agent.logLines.join(''), /client certificate refused/);

  t.test('and accepted once that certificate itself is trusted', async (t) => {
    await trustCert(agent.certPaths.dir, join(otherDir, 'out', 'alice.pem'));
    const again = await startTestAgent(t, { certs: agent.certPaths.dir, users: [['alice', 'read', 'x-password']] });
    const c = await LdmClient.connect({ host: '127.0.0.1', port: again.port, auth: { kind: 'certificate' }, ca, servername: 'localhost', cert: other.cert, key: other.key });
    t.equal(c.jid, 'alice@test-host/ldm');
    await c.close();
  });
});

t.test('a trusted certificate whose name is no user gets a SASL failure', async (t) => {
  const issued = await issueClientCert(agent.certPaths.dir, 'mallory', join(agent.dir, 'mallory'));
  const err = await refusal(connect({ kind: 'certificate' }, { cert: readFileSync(issued.cert, 'utf8'), key: readFileSync(issued.key, 'utf8') }));
  t.equal(err.condition, 'not-authorized');
  t.match(err.message, /no user mallory/);
});

t.test('EXTERNAL is not offered without a certificate', async (t) => {
  const err = await refusal(connect({ kind: 'certificate' }));
  t.equal(err.condition, 'invalid-mechanism');
  t.match(err.message, /does not offer SASL EXTERNAL \(offered: PLAIN\)/);
});

t.test('a read user may list and register, and is refused add-domain with a message', async (t) => {
  const c = await connect({ kind: 'password', user: 'viewer', password: 'viewer-password-2' });
  t.equal((await c.request(LIST_DOMAIN)).response?.status, 'success');
  t.equal((await c.request('<LDM_interface version="1.3"><cmd><action>reg-all-events</action><data version="3.0"/></cmd></LDM_interface>')).response?.status, 'success');
  const r = await c.request(
    '<LDM_interface version="1.3"><cmd><action>add-domain</action><data version="3.0"><Envelope><Content ovf:id="ldg1"/></Envelope></data></cmd><cmd><action>list-domain</action></cmd></LDM_interface>',
  );
  t.equal(r.response?.status, 'failure');
  t.same(r.commands[0]!.response, { status: 'failure', messages: ['Authorization failed: user viewer (role read) may not run add-domain'] });
  t.equal(r.commands[1]!.response?.status, 'success', 'the next command of the same document still runs');
  await c.close();
});

t.test('a wrong password gets a SASL failure; further attempts from that address are delayed', async (t) => {
  const timed = async (password: string) => {
    const start = performance.now();
    const err = await refusal(connect({ kind: 'password', user: 'ops', password }));
    return { err, ms: performance.now() - start };
  };
  const first = await timed('guess-1');
  t.equal(first.err.condition, 'not-authorized');
  t.match(first.err.message, /authentication failed: not-authorized/);
  const second = await timed('guess-2');
  const third = await timed('guess-3');
  t.ok(second.ms >= 240, `second attempt waited ${second.ms.toFixed(0)} ms (>= 250)`);
  t.ok(third.ms >= 490, `third attempt waited ${third.ms.toFixed(0)} ms (>= 500)`);
  t.ok(third.ms > first.ms + 300, 'the delay grows');
  const log = agent.logLines.join('');
  t.match(log, /authentication failed user=ops address=127.0.0.1 failures=3/);
  for (const secret of ['guess-1', 'guess-2', 'guess-3', 'ops-password-1', 'viewer-password-2']) {
    t.notMatch(log, secret, `the log never shows ${secret}`);
  }
  // The right password still works (after its delay), and clears the record.
  const c = await connect({ kind: 'password', user: 'ops', password: 'ops-password-1' });
  await c.close();
  const fresh = await timed('guess-4');
  t.ok(fresh.ms < 240 + first.ms, 'after a success the next failure is not delayed by the earlier ones');
});

t.test('an unknown user is refused like a wrong password', async (t) => {
  const err = await refusal(connect({ kind: 'password', user: 'nobody', password: 'whatever-pass' }));
  t.equal(err.condition, 'not-authorized');
});
