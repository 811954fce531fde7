// Hostile and broken input over real sockets: each gets its stream error, and a
// well-behaved client on the same agent is served throughout.
import t from 'tap';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { HEADER, LIST_DOMAIN, onlineRawPeer, RawPeer, STARTTLS } from './helpers/raw.ts';

const agent = await startTestAgent(t, {
  users: [['admin', 'write', 'admin-secret']],
  tuning: { timeouts: { handshakeMs: 3000, partialDocumentMs: 700, idleMs: 60_000 } },
});

// The well-behaved client: asks for the domain list every 25 ms for the whole file.
const good = await LdmClient.connect({ host: '127.0.0.1', port: agent.port, auth: { kind: 'password', user: 'admin', password: 'admin-secret' } });
let served = 0;
const failures: string[] = [];
let stopLoop = false;
const loop = (async () => {
  while (!stopLoop) {
    try {
      const r = await good.request(LIST_DOMAIN);
      if (r.response?.status === 'success') served++;
      else failures.push(JSON.stringify(r.response));
    } catch (err) {
      failures.push((err as Error).message);
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
})();

/** The stream error condition the agent sent, and whether it then closed the connection. */
async function streamError(peer: RawPeer, ms = 5000): Promise<{ condition: string; text: string; closed: boolean }> {
  const seen = await peer.until(/<\/stream:error>/, ms);
  const m = /<stream:error><([a-z-]+) [^>]*\/>(?:<text[^>]*>([^<]*)<\/text>)?<\/stream:error>/.exec(seen);
  return { condition: m?.[1] ?? '(none)', text: m?.[2] ?? '', closed: await peer.closedWithin(3000) };
}

t.test('an LDM document before TLS: not-authorized, closed', async (t) => {
  const p = await RawPeer.tcp(agent.port);
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.write(LIST_DOMAIN);
  const e = await streamError(p);
  t.equal(e.condition, 'not-authorized');
  t.match(e.text, /STARTTLS is required/);
  t.ok(e.closed);
  t.notMatch(p.text, /<LDM_interface/, 'no response to the document');
});

t.test('an LDM document after TLS but before authentication: not-authorized', async (t) => {
  const p = await RawPeer.tcp(agent.port);
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.write(STARTTLS);
  await p.until(/<proceed/);
  await p.startTls();
  p.write(HEADER);
  await p.until(/<mechanism>PLAIN<\/mechanism>/);
  p.write(LIST_DOMAIN);
  const e = await streamError(p);
  t.equal(e.condition, 'not-authorized');
  t.match(e.text, /before authentication/);
  t.ok(e.closed);
});

t.test('garbage bytes instead of a stream: a header, then not-well-formed', async (t) => {
  const p = await RawPeer.tcp(agent.port);
  p.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x41, 0x3c, 0x3c]));
  const e = await streamError(p);
  t.match(p.text, /^<\?xml version='1.0'\?><stream:stream /, 'the error comes inside a stream of ours');
  t.equal(e.condition, 'not-well-formed');
  t.ok(e.closed);
});

t.test('garbage after the handshake: not-well-formed with the reason', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  p.write('<LDM_interface version="1.3"><cmd></LDM_interface>');
  const e = await streamError(p);
  t.equal(e.condition, 'not-well-formed');
  t.match(e.text, /not well-formed/);
  t.ok(e.closed);
});

t.test('a 32 MiB document: policy-violation at the 4 MiB limit, not buffered whole', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  const before = process.memoryUsage().rss;
  p.write('<LDM_interface version="1.3"><cmd><action>list-domain</action><!--');
  const chunk = 'x'.repeat(1024 * 1024);
  for (let i = 0; i < 32 && !p.closed; i++) {
    p.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  const e = await streamError(p, 10_000);
  t.equal(e.condition, 'policy-violation');
  t.match(e.text, /size limit of 4194304 bytes/);
  t.ok(e.closed);
  t.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory did not grow with the document');
});

t.test('10,000 nested elements: policy-violation naming the depth limit', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  p.write('<LDM_interface version="1.3"><cmd>' + '<x>'.repeat(10_000));
  const e = await streamError(p);
  t.equal(e.condition, 'policy-violation');
  t.match(e.text, /nesting depth limit of 64/);
});

t.test('a DOCTYPE before the stream: restricted-xml', async (t) => {
  const p = await RawPeer.tcp(agent.port);
  p.write(`<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x "y">]>` + HEADER.slice(21));
  const e = await streamError(p);
  t.equal(e.condition, 'restricted-xml');
  t.match(e.text, /DOCTYPE/);
});

t.test('a DOCTYPE inside the stream: restricted-xml (RFC 6120 section 11.1), nothing answered', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  p.write('<!DOCTYPE LDM_interface>' + LIST_DOMAIN);
  const e = await streamError(p);
  t.equal(e.condition, 'restricted-xml');
  t.notMatch(p.text, /<LDM_interface/);
});

t.test('a client that stops in the middle of a document: connection-timeout', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  const started = Date.now();
  p.write('<LDM_interface version="1.3"><cmd><action>list-dom');
  const e = await streamError(p);
  t.equal(e.condition, 'connection-timeout');
  t.match(e.text, /started but not finished within 700 ms/);
  t.ok(Date.now() - started >= 600, 'waited for the limit');
});

t.test('a client that never finishes the handshake: connection-timeout after the handshake limit', async (t) => {
  const p = await RawPeer.tcp(agent.port);
  p.write(HEADER);
  const e = await streamError(p, 6000);
  t.equal(e.condition, 'connection-timeout');
  t.match(e.text, /handshake did not finish within 3000 ms/);
});

t.test('300 simultaneous idle connections: the limit refuses the rest, all are closed, the good client goes on', async (t) => {
  const peers = await Promise.all(Array.from({ length: 300 }, () => RawPeer.tcp(agent.port)));
  const outcomes = await Promise.all(peers.map((p) => streamError(p, 8000).catch((err: Error) => ({ condition: err.message, text: '', closed: p.closed }))));
  const count = (c: string) => outcomes.filter((o) => o.condition === c).length;
  // 32 slots per address, one held by the good client: 31 idle peers are accepted and time out, 269 are refused at once.
  t.equal(count('policy-violation'), 269, 'refused over the limit');
  t.equal(count('connection-timeout'), 31, 'accepted idle peers timed out');
  t.ok(outcomes.every((o) => o.closed), 'every idle connection was closed');
  t.ok(outcomes.some((o) => /too many connections from your address \(limit 32\)/.test(o.text)), 'the refusal names the limit');
  // Once they are gone, new clients get in again.
  const again = await LdmClient.connect({ host: '127.0.0.1', port: agent.port, auth: { kind: 'password', user: 'admin', password: 'admin-secret' } });
  t.equal((await again.request(LIST_DOMAIN)).response?.status, 'success');
  await again.close();
});

t.test('the well-behaved client was served throughout', async (t) => {
  stopLoop = true;
  await loop;
  t.same(failures, [], 'no request of the good client failed');
  t.ok(served > 20, `served ${served} requests meanwhile`);
  await good.close();
});
