// Rights follow the user (issue 13, item 6): with the real daemon and the real
// `ldm-agent user` command, removing a user closes her open sessions (password and
// certificate) within a second, and a changed role applies to the next request of
// a session already open. Local-socket sessions are not touched.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueClientCert } from '../agent/auth/certs.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { AGENT_ARGS, startDaemon } from './helpers/daemon.ts';
import { completeLogin, LIST_DOMAIN, onlineRawPeer, RawPeer, tlsRawPeer } from './helpers/raw.ts';

const run = promisify(execFile);
const daemon = await startDaemon(t);
const state = join(daemon.dir, 'var');
const passwordFile = join(daemon.dir, 'password');

/** `ldm-agent user ARGS...` as an operator types it; resolves with its stdout once it has exited. */
async function user(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [...AGENT_ARGS, 'user', ...args, '--state', state]);
  return stdout;
}

async function addUser(name: string, role: 'read' | 'write', password: string): Promise<void> {
  writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  await user('add', name, '--role', role, '-p', passwordFile);
}

const addDomain = (name: string) =>
  `<LDM_interface version="1.3"><cmd><action>add-domain</action><data version="3.0"><Envelope><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${name}"/></Envelope></data></cmd></LDM_interface>`;

/** Send a document on a raw session; resolves with the response text. */
async function ask(p: RawPeer, doc: string): Promise<string> {
  const from = p.text.length;
  p.write(doc);
  return p.until(/<\/LDM_interface>/, 5000, from);
}

/** A session logged in with a client certificate (SASL EXTERNAL), as raw bytes. */
async function certificateSession(cert: string, key: string): Promise<RawPeer> {
  const p = await tlsRawPeer(daemon.port, undefined, { cert, key });
  return completeLogin(p, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`);
}

/** Waits for the stream error that ends a session; resolves with it and the time it took. */
async function ended(p: RawPeer, since: number): Promise<{ error: string; ms: number; closed: boolean }> {
  const seen = await p.until(/<\/stream:error>/, 3000).catch((err: Error) => err.message);
  const ms = performance.now() - since;
  const m = /<stream:error><([a-z-]+) [^>]*\/><text[^>]*>([^<]*)<\/text><\/stream:error>/.exec(seen);
  return { error: m ? `${m[1]}: ${m[2]}` : seen.slice(-300), ms, closed: await p.closedWithin(3000) };
}

await addUser('alice', 'write', 'alice-password-1');
await addUser('bob', 'write', 'bob-password-2');
await addUser('carol', 'write', 'carol-password-3');
const issued = await issueClientCert(join(daemon.dir, 'certs'), 'alice', join(daemon.dir, 'alice-cert'));

t.test('removing a user closes her password and certificate sessions within a second; local sessions go on', async (t) => {
  const byPassword = await onlineRawPeer(daemon.port, 'alice', 'alice-password-1');
  const byCertificate = await certificateSession(readFileSync(issued.cert, 'utf8'), readFileSync(issued.key, 'utf8'));
  const local = await LdmClient.connect({ path: join(state, 'ldmd.sock'), auth: { kind: 'local' } });
  t.match(await ask(byPassword, addDomain('ldg1')), /<status>success<\/status>/, 'alice may write before');

  t.match(await user('remove', 'alice'), /user "alice" removed/);
  const removedAt = performance.now();
  const [password, certificate] = await Promise.all([ended(byPassword, removedAt), ended(byCertificate, removedAt)]);
  t.equal(password.error, 'not-authorized: user alice was removed: the session is closed', 'the password session is told why');
  t.ok(password.ms < 1000, `the password session ended ${password.ms.toFixed(0)} ms after the command`);
  t.ok(password.closed, 'and is closed');
  t.equal(certificate.error, 'not-authorized: user alice was removed: the session is closed', 'the certificate session too');
  t.ok(certificate.ms < 1000, `the certificate session ended ${certificate.ms.toFixed(0)} ms after the command`);
  t.ok(certificate.closed);

  t.equal((await local.request(addDomain('ldg2'))).response?.status, 'success', 'the local session keeps its write role');
  await local.close();
  t.match(daemon.stderr(), /session closed: user removed user=alice/);
});

t.test('a role changed in the file applies to the next request of an open session', async (t) => {
  const bob = await onlineRawPeer(daemon.port, 'bob', 'bob-password-2');
  t.match(await ask(bob, addDomain('ldg3')), /<status>success<\/status>/, 'bob may write before');
  // An editor's way: write a new file beside it and rename it over the old one.
  const file = join(state, 'users.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { users: { name: string; role: string }[] };
  doc.users.find((u) => u.name === 'bob')!.role = 'read';
  writeFileSync(`${file}.new`, JSON.stringify(doc, null, 2), { mode: 0o600 });
  renameSync(`${file}.new`, file);
  await new Promise((r) => setTimeout(r, 1000));
  const refused = await ask(bob, addDomain('ldg4'));
  t.match(refused, /Authorization failed: user bob \(role read\) may not run add-domain/, 'the write is refused with the new role');
  t.match(await ask(bob, LIST_DOMAIN), /<status>success<\/status>/, 'reading still works: the session stays open');
  t.notOk(bob.closed);
  bob.destroy();
  t.match(daemon.stderr(), /session role changed user=bob .*from=write to=read/);
});

t.test('re-adding a user with --role read leaves her open session no write access', async (t) => {
  const carol = await onlineRawPeer(daemon.port, 'carol', 'carol-password-3');
  t.match(await ask(carol, addDomain('ldg5')), /<status>success<\/status>/, 'carol may write before');
  await user('remove', 'carol');
  await addUser('carol', 'read', 'carol-password-3');
  await new Promise((r) => setTimeout(r, 1000));
  // Her session was closed when she was removed, or demoted if the agent saw only the end result.
  const answer = carol.closed ? 'closed' : await ask(carol, addDomain('ldg6')).catch((err: Error) => err.message);
  t.notMatch(answer, /<status>success<\/status>/, `no write access: ${answer.slice(-200)}`);
  carol.destroy();
  const again = await onlineRawPeer(daemon.port, 'carol', 'carol-password-3');
  t.match(await ask(again, addDomain('ldg7')), /may not run add-domain/, 'a new session of hers has the read role');
  again.destroy();
});
