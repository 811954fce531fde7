// Connection allowances (issue 13, item 4): idle peers cannot lock anyone out.
// The local socket has its own allowance, one address gets at most its share of
// TCP, silent peers give way and are closed within seconds, and refusals make
// a few log lines, not one each.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCerts } from '../agent/auth/certs.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { RefusalLog } from '../agent/xmpp/admission.ts';
import { loadConfig } from '../agent/config.ts';
import { createLogger } from '../agent/log.ts';
import { startTestAgent } from './helpers/agent.ts';
import { AGENT_ARGS, startDaemon } from './helpers/daemon.ts';
import { HEADER, LIST_DOMAIN, onlineRawPeer, RawPeer } from './helpers/raw.ts';

/** The stream error a peer got (condition and text), or what it saw instead. */
async function streamError(peer: RawPeer, ms: number): Promise<{ condition: string; text: string }> {
  try {
    const seen = await peer.until(/<\/stream:error>/, ms);
    const m = /<stream:error><([a-z-]+) [^>]*\/>(?:<text[^>]*>([^<]*)<\/text>)?<\/stream:error>/.exec(seen);
    return { condition: m?.[1] ?? '(none)', text: m?.[2] ?? '' };
  } catch (err) {
    return { condition: '(no stream error)', text: (err as Error).message };
  }
}

/** A peer that got the stream features: it was let in. */
async function admitted(peer: RawPeer): Promise<boolean> {
  peer.write(HEADER);
  return peer
    .until(/<\/stream:features>/, 2000)
    .then(() => true)
    .catch(() => false);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// One certificate directory for the in-process agents: key generation is the slow part of a start.
const certs = mkdtempSync(join(tmpdir(), 'ldm-conn-certs-'));
t.teardown(() => rmSync(certs, { recursive: true, force: true }));
await ensureCerts(certs, { hostnames: ['test-host', 'localhost'], ips: ['127.0.0.1'] });

t.test('300 idle TCP peers: the local administrator and a user on another address get in at once; the peers are gone in seconds; few log lines', async (t) => {
  const daemon = await startDaemon(t);
  const passwordFile = join(daemon.dir, 'password');
  writeFileSync(passwordFile, 'ops-password-1\n', { mode: 0o600 });
  const added = spawnSync(process.execPath, [...AGENT_ARGS, 'user', 'add', 'ops', '--role', 'write', '-p', passwordFile, '--state', join(daemon.dir, 'var')], { encoding: 'utf8' });
  t.equal(added.status, 0, added.stderr);
  const warningsBefore = daemon.stderr().split('\n').filter((l) => / warn /.test(l)).length;

  const started = Date.now();
  const idle = await Promise.all(Array.from({ length: 300 }, () => RawPeer.tcp(daemon.port)));
  t.teardown(() => idle.forEach((p) => p.destroy()));
  // A connect completes in the kernel before the agent accepts it: let the agent take them all in.
  await sleep(500);

  // The local administrator, over the Unix socket.
  let begin = performance.now();
  const admin = await LdmClient.connect({ path: join(daemon.dir, 'var', 'ldmd.sock'), auth: { kind: 'local' }, timeoutMs: 3000 });
  t.equal((await admin.request(LIST_DOMAIN)).response?.status, 'success', 'the local administrator is served');
  const adminMs = performance.now() - begin;
  t.ok(adminMs < 1000, `local login and list-domain took ${adminMs.toFixed(0)} ms`);
  await admin.close();

  // A user on another address (127.0.0.2 is loopback too).
  begin = performance.now();
  const user = await onlineRawPeer(daemon.port, 'ops', 'ops-password-1', '127.0.0.2');
  user.write(LIST_DOMAIN);
  t.match(await user.until(/<\/LDM_interface>/, 3000), /<status>success<\/status>/, 'a user on another address is served');
  const userMs = performance.now() - begin;
  t.ok(userMs < 1000, `TCP login and list-domain took ${userMs.toFixed(0)} ms`);
  user.destroy();

  // Every idle peer is closed: refused at once, or after the 3 s allowed before the first byte.
  const closed = await Promise.all(idle.map((p) => p.closedWithin(Math.max(0, started + 5000 - Date.now()))));
  t.equal(closed.filter(Boolean).length, 300, 'every idle peer was closed within 5 s');
  const outcomes = idle.map((p) => p.text);
  t.equal(outcomes.filter((x) => /too many connections from your address \(limit 32\)/.test(x)).length, 268, '268 refused: 32 per address');
  t.equal(outcomes.filter((x) => /nothing received within 3000 ms of connecting/.test(x)).length, 32, 'the 32 let in were closed after 3 s of silence');

  const warnings = daemon.stderr().split('\n').filter((l) => / warn /.test(l));
  t.ok(warnings.length - warningsBefore <= 2, `${warnings.length - warningsBefore} warning lines for 268 refusals:\n${warnings.slice(warningsBefore).join('\n')}`);
});

t.test('one address gets at most its allowance; another address still gets in', async (t) => {
  const agent = await startTestAgent(t, { certs, tuning: { maxConnectionsPerAddress: 4 } });
  const four = await Promise.all(Array.from({ length: 4 }, () => RawPeer.tcp(agent.port)));
  t.teardown(() => four.forEach((p) => p.destroy()));
  for (const p of four) t.ok(await admitted(p), 'within the allowance');
  const fifth = await RawPeer.tcp(agent.port);
  const e = await streamError(fifth, 2000);
  t.equal(e.condition, 'policy-violation');
  t.equal(e.text, 'too many connections from your address (limit 4)');
  t.ok(await fifth.closedWithin(2000), 'the refused connection is closed');
  const other = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.3');
  t.ok(await admitted(other), 'a peer on another address is let in');
  other.destroy();
});

t.test('at the address allowance, a new connection takes the place of one silent for a second that has not logged in', async (t) => {
  const agent = await startTestAgent(t, { certs, users: [['ops', 'write', 'ops-password-1']], tuning: { maxConnectionsPerAddress: 3 } });
  // One logged-in session: never replaced. Two silent peers on the same address fill its allowance.
  const session = await onlineRawPeer(agent.port, 'ops', 'ops-password-1');
  const silent = [await RawPeer.tcp(agent.port), await RawPeer.tcp(agent.port)];
  await sleep(1200);
  silent[1]!.write(' '); // whitespace between stanzas is input: this one is not silent any more
  await sleep(50);
  const fresh = await RawPeer.tcp(agent.port);
  const e = await streamError(silent[0]!, 2000);
  t.equal(e.condition, 'policy-violation', 'the silent peer made room');
  t.match(e.text, /connection closed to make room for a new one: nothing received for \d+ ms and not logged in/);
  t.ok(await admitted(fresh), 'the new peer is let in');
  // Now nobody of this address has been silent for a second: the next one is refused.
  const fourth = await RawPeer.tcp(agent.port);
  t.equal((await streamError(fourth, 2000)).text, 'too many connections from your address (limit 3)');
  t.notOk(silent[1]!.closed, 'the peer that spoke kept its place');
  session.write(LIST_DOMAIN);
  t.match(await session.until(/<\/LDM_interface>/, 3000), /<status>success<\/status>/, 'the logged-in session was never touched');
  for (const p of [session, silent[1]!, fresh, fourth]) p.destroy();
});

t.test('at the total, the address holding the most connections gives way to one holding fewer', async (t) => {
  const agent = await startTestAgent(t, { certs, users: [['ops', 'write', 'ops-password-1']], tuning: { maxConnections: 5 } });
  // 127.0.0.1: a logged-in session and three peers in their handshake; 127.0.0.4: one peer. The total (5) is full.
  const session = await onlineRawPeer(agent.port, 'ops', 'ops-password-1');
  const busy = [await RawPeer.tcp(agent.port), await RawPeer.tcp(agent.port), await RawPeer.tcp(agent.port)];
  for (const p of busy) t.ok(await admitted(p));
  const other = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.4');
  t.ok(await admitted(other));
  // A newcomer from a third address takes the place of a peer of the busiest address, silent or not.
  const newcomer = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.5');
  t.ok(await admitted(newcomer), 'the newcomer is let in');
  t.equal((await streamError(busy[0]!, 2000)).condition, 'policy-violation', 'the busiest address gave way (its oldest peer)');
  const second = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.6');
  t.ok(await admitted(second), 'so does a second newcomer');
  t.equal((await streamError(busy[1]!, 2000)).condition, 'policy-violation');
  // 127.0.0.1 still holds two (the session and a peer), more than a newcomer would: its peer gives way too.
  const third = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.7');
  t.ok(await admitted(third));
  const e = await streamError(busy[2]!, 2000);
  t.equal(e.text, 'connection closed to make room for a new one: all 5 connections are taken and your address holds the most (2); not logged in');
  // Now every address holds one, and the session is logged in: nobody gives way.
  const fourth = await RawPeer.tcp(agent.port, '127.0.0.1', '127.0.0.8');
  t.equal((await streamError(fourth, 2000)).text, 'too many connections (limit 5)');
  t.notOk(other.closed || newcomer.closed || second.closed || third.closed, 'nobody else was touched');
  session.write(LIST_DOMAIN);
  t.match(await session.until(/<\/LDM_interface>/, 3000), /<status>success<\/status>/, 'the logged-in session was never touched');
  for (const p of [session, other, newcomer, second, third, fourth]) p.destroy();
});

t.test('a peer that sends nothing is closed after firstByteMs; one that does not start TLS, after tlsMs', async (t) => {
  const agent = await startTestAgent(t, { certs, tuning: { timeouts: { firstByteMs: 400, tlsMs: 900, handshakeMs: 10_000 } } });
  const mute = await RawPeer.tcp(agent.port);
  const plain = await RawPeer.tcp(agent.port);
  const begin = Date.now();
  plain.write(HEADER);
  const [muteError, plainError] = await Promise.all([streamError(mute, 3000), streamError(plain, 3000)]);
  t.same(muteError, { condition: 'connection-timeout', text: 'nothing received within 400 ms of connecting' });
  t.same(plainError, { condition: 'connection-timeout', text: 'STARTTLS not completed within 900 ms of connecting' });
  t.ok(await plain.closedWithin(3000), 'closed');
  t.ok(Date.now() - begin < 2500, 'well before the 10 s handshake limit');
});

t.test('the local socket has an allowance of its own', async (t) => {
  const agent = await startTestAgent(t, { certs, tuning: { maxConnections: 4, maxConnectionsPerAddress: 4, maxLocalConnections: 2 } });
  const tcp = await Promise.all(Array.from({ length: 4 }, () => RawPeer.tcp(agent.port)));
  t.teardown(() => tcp.forEach((p) => p.destroy()));
  for (const p of tcp) t.ok(await admitted(p));
  const locals = [await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } }), await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } })];
  for (const c of locals) t.equal((await c.request(LIST_DOMAIN)).response?.status, 'success', 'TCP is full, the local socket still serves');
  const third = await RawPeer.unix(agent.unixPath);
  t.equal((await streamError(third, 2000)).text, 'too many connections to the local socket (limit 2)');
  for (const c of locals) await c.close();
});

t.test('the bounds are set in the configuration file (key connections)', async (t) => {
  const file = join(certs, 'agent.json');
  writeFileSync(file, JSON.stringify({ connections: { maxConnectionsPerAddress: 2, firstByteMs: 500 } }));
  t.same(loadConfig(['--config', file]).connections, { maxConnectionsPerAddress: 2, firstByteMs: 500 });
  writeFileSync(join(certs, 'bad.json'), JSON.stringify({ connections: { maxConnectionsPerAddress: 0 } }));
  t.throws(() => loadConfig(['--config', join(certs, 'bad.json')]), /configuration key "connections.maxConnectionsPerAddress" is 0: expected a whole number from 1 to 65536/);
  writeFileSync(join(certs, 'unknown.json'), JSON.stringify({ connections: { perAddress: 2 } }));
  t.throws(() => loadConfig(['--config', join(certs, 'unknown.json')]), /unknown key "connections.perAddress"/);

  const daemon = await startDaemon(t, ['--config', file]);
  const peers = [await RawPeer.tcp(daemon.port), await RawPeer.tcp(daemon.port)];
  const third = await RawPeer.tcp(daemon.port);
  t.equal((await streamError(third, 2000)).text, 'too many connections from your address (limit 2)');
  t.same(await streamError(peers[0]!, 2000), { condition: 'connection-timeout', text: 'nothing received within 500 ms of connecting' });
  peers.forEach((p) => p.destroy());
});

t.test('refusals are summed up: the first logged at once, the rest in one line per interval', async (t) => {
  const lines: string[] = [];
  const summary = new RefusalLog(createLogger('info', 'test', (l) => lines.push(l)), 300);
  t.teardown(() => summary.close());
  for (let i = 0; i < 500; i++) summary.note('address', '192.0.2.7', 32);
  for (let i = 0; i < 20; i++) summary.note('total', `198.51.100.${i}`, 256);
  summary.note('replaced', '192.0.2.8', 32);
  t.equal(lines.length, 1, 'one line at once');
  t.match(lines[0], /connection refused: limit reached address=192\.0\.2\.7 limit=address max=32/);
  await sleep(450);
  t.equal(lines.length, 2, 'one summary line after the interval');
  t.match(lines[1], /refusedTotal=20 refusedPerAddress=499 replaced=1 addresses=22 busiest=\["192\.0\.2\.7 \(499\)"/);
  await sleep(700);
  t.equal(lines.length, 2, 'a quiet interval writes nothing');
  summary.note('local', 'unix', 64);
  t.equal(lines.length, 3, 'after a quiet interval the next refusal is logged at once again');
});
