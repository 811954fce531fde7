// The exact byte sequence of Solaris libldom (protocol.md section 1), over the local
// socket and over loopback TCP with --local-tcp: no namespaces in its header, TLS
// without certificates, no SASL, then event registration and an event.
import t, { type Test } from 'tap';
import { LdmEvent } from '../agent/events/bus.ts';
import { decodeEvent, decodeResponse } from '../agent/xml/decode.ts';
import { startTestAgent, type TestAgent } from './helpers/agent.ts';
import { RawPeer } from './helpers/raw.ts';

const LIBLDOM_HEADER = `<?xml version='1.0'?><stream:stream xml:lang="en" version="1.0" id="xmpp">`;
const LIBLDOM_STARTTLS = `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`;
const LIBLDOM_REGISTER = `<LDM_interface version="1.1"><cmd><action>reg-domain-events</action><data version="3.0"> </data></cmd></LDM_interface>`;

async function libldomSession(t: Tap, agent: TestAgent, peer: RawPeer): Promise<void> {
  peer.write(LIBLDOM_HEADER);
  // libldom waits for the end tag of starttls inside the features, then of stream:features.
  const features = await peer.until(/<\/stream:features>/);
  t.match(features, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>(<required\/>)?<\/starttls>/);
  peer.write(LIBLDOM_STARTTLS);
  await peer.until(/<\/?proceed[^>]*>/);
  const tls = await peer.startTls({ rejectUnauthorized: false });
  t.ok(['TLSv1.2', 'TLSv1.3'].includes(tls.getProtocol() ?? ''), `TLS ${tls.getProtocol()}`);
  peer.write(LIBLDOM_HEADER);
  await peer.until(/<\/stream:features>|<stream:features\/>/);
  t.notMatch(peer.text, /<mechanisms/, 'no SASL asked of a local client');
  const mark = peer.text.length;
  peer.write(LIBLDOM_REGISTER);
  const answer = await peer.until(/<\/LDM_interface>/, 5000, mark);
  const response = decodeResponse(answer.slice(answer.indexOf('<LDM_interface')));
  t.equal(response.version, '1.1', 'the response echoes the request version');
  t.equal(response.response?.status, 'success');
  t.equal(response.commands[0]?.response?.status, 'success');

  // A resource event: not registered for, must not arrive. Then a domain event: must.
  const afterResponse = peer.text.length;
  agent.bus.publish(new LdmEvent('resource', 'add-vcpu', { contents: [{ id: 'ldg1', sections: [] }], sections: [] }));
  agent.bus.publish(new LdmEvent('domain', 'bind-domain', { contents: [{ id: 'ldg1', sections: [] }], sections: [] }));
  const eventText = await peer.until(/<\/LDM_event>/, 5000, afterResponse);
  const events = eventText.match(/<LDM_event[\s\S]*?<\/LDM_event>/g) ?? [];
  t.equal(events.length, 1, 'only the registered class arrives');
  const ev = decodeEvent(events[0]!);
  t.equal(ev.commands[0]!.action, 'bind-domain');
  t.equal(ev.commands[0]!.data[0]!.envelope!.contents[0]!.id, 'ldg1');
  peer.destroy();
}

type Tap = Test;

t.test('over the local Unix socket (mode 0600)', async (t) => {
  const agent = await startTestAgent(t);
  const { statSync } = await import('node:fs');
  t.equal(statSync(agent.unixPath).mode & 0o777, 0o600, 'socket mode 0600');
  await libldomSession(t, agent, await RawPeer.unix(agent.unixPath));
});

t.test('over loopback TCP with --local-tcp', async (t) => {
  const agent = await startTestAgent(t, { localTcp: true });
  await libldomSession(t, agent, await RawPeer.tcp(agent.port));
});

t.test('without --local-tcp the same bytes over TCP are asked to authenticate', async (t) => {
  const agent = await startTestAgent(t);
  const peer = await RawPeer.tcp(agent.port);
  peer.write(LIBLDOM_HEADER);
  await peer.until(/<\/stream:features>/);
  peer.write(LIBLDOM_STARTTLS);
  await peer.until(/<proceed/);
  await peer.startTls();
  peer.write(LIBLDOM_HEADER);
  await peer.until(/<mechanism>PLAIN<\/mechanism>/);
  peer.write(LIBLDOM_REGISTER);
  await peer.until(/<not-authorized /);
  t.ok(await peer.closedWithin(3000));
});

t.test('a local client may skip TLS on the Unix socket and is served at once', async (t) => {
  const agent = await startTestAgent(t);
  const peer = await RawPeer.unix(agent.unixPath);
  peer.write(LIBLDOM_HEADER);
  await peer.until(/<\/stream:features>/);
  peer.write('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>');
  const answer = await peer.until(/<\/LDM_interface>/);
  t.equal(decodeResponse(answer.slice(answer.indexOf('<LDM_interface'))).response?.status, 'success');
  peer.destroy();
});
