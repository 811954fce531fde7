// Event registration per connection, and a slow subscriber that cannot stall the agent.
import t from 'tap';
import { LdmEvent, type EventClass } from '../agent/events/bus.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { HEADER, RawPeer } from './helpers/raw.ts';

const agent = await startTestAgent(t, { tuning: { maxOutboundBytes: 256 * 1024 } });
const request = (action: string) => `<LDM_interface version="1.3"><cmd><action>${action}</action><data version="3.0"/></cmd></LDM_interface>`;
const event = (cls: EventClass, action: string, id = 'ldg1') => new LdmEvent(cls, action, { contents: [{ id, sections: [] }], sections: [] });

async function subscriber(...actions: string[]): Promise<{ client: LdmClient; got: LdmDocument[] }> {
  const client = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
  const got: LdmDocument[] = [];
  client.onEvent((ev) => got.push(ev));
  for (const a of actions) t.equal((await client.request(request(a))).response?.status, 'success', a);
  return { client, got };
}

/** Publish, then let the connections flush: a request round trip on each orders after the events. */
async function publishAndSettle(clients: LdmClient[], ...events: LdmEvent[]): Promise<void> {
  for (const e of events) agent.bus.publish(e);
  await Promise.all(clients.map((c) => c.request(request('list-domain'))));
}

t.test('each connection receives exactly the classes it registered for', async (t) => {
  const domain = await subscriber('reg-domain-events');
  const resource = await subscriber('reg-resource-events');
  const progress = await subscriber('reg-progress-events');
  const all = await subscriber('reg-all-events');
  const none = await subscriber();
  const clients = [domain, resource, progress, all, none].map((s) => s.client);
  await publishAndSettle(clients, event('domain', 'start-domain'), event('resource', 'add-crypto'), event('hardware', 'add-spconfig'), event('progress', 'migrate-domain'));
  const actions = (s: { got: LdmDocument[] }) => s.got.map((e) => e.commands[0]!.action);
  t.same(actions(domain), ['start-domain']);
  t.same(actions(resource), ['add-crypto']);
  t.same(actions(progress), ['migrate-domain']);
  t.same(actions(all), ['start-domain', 'add-crypto', 'add-spconfig', 'migrate-domain']);
  t.same(actions(none), []);

  t.equal((await all.client.request(request('unreg-resource-events'))).response?.status, 'success');
  all.got.length = 0;
  await publishAndSettle(clients, event('resource', 'remove-crypto'), event('domain', 'stop-domain'));
  t.same(actions(all), ['stop-domain'], 'unregistering one class keeps the others');
  t.equal((await all.client.request(request('unreg-all-events'))).response?.status, 'success');
  all.got.length = 0;
  await publishAndSettle(clients, event('domain', 'bind-domain'));
  t.same(actions(all), []);
  await Promise.all(clients.map((c) => c.close()));
});

t.test('a subscriber that stops reading is cut off; the others get every event and publishing never blocks', async (t) => {
  const good = await subscriber('reg-all-events');
  const slow = await RawPeer.unix(agent.unixPath);
  slow.write(HEADER);
  await slow.until(/<\/stream:features>/);
  slow.write(request('reg-all-events'));
  await slow.until(/<\/LDM_interface>/);
  slow.pause();

  // Each event is about 16 KiB; the agent allows 256 KiB pending per connection (plus what the kernel buffers).
  const big = (i: number) =>
    new LdmEvent('domain', 'set-domain', {
      contents: [{ id: `ldg${i}`, sections: [{ items: [{ type: 'ldom_info', rasd: new Map(), props: new Map([['note', 'x'.repeat(16 * 1024)]]), bindings: [] }] }] }],
      sections: [],
    });
  let published = 0;
  let slowestPublishMs = 0;
  const cutOff = () => /slow event subscriber disconnected/.test(agent.logLines.join(''));
  const before = agent.xmpp.connectionCount;
  const deadline = Date.now() + 15_000;
  while (!cutOff() && Date.now() < deadline) {
    for (let i = 0; i < 8; i++) {
      const start = performance.now();
      agent.bus.publish(big(published++));
      slowestPublishMs = Math.max(slowestPublishMs, performance.now() - start);
    }
    // The good subscriber keeps up: its response comes after the events just published.
    await good.client.request(request('list-domain'));
  }
  t.ok(cutOff(), `the slow subscriber was cut off after ${published} events`);
  t.equal(agent.xmpp.connectionCount, before - 1, 'its connection is gone');
  t.ok(published * 16 * 1024 < 64 * 1024 * 1024, 'cut off long before the agent buffered much');
  t.ok(slowestPublishMs < 50, `no publish blocked (slowest ${slowestPublishMs.toFixed(1)} ms)`);
  t.equal(good.got.length, published, 'the well-behaved subscriber received every event');
  slow.destroy();
  await good.client.close();
});
