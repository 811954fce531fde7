// GET /api/events over real HTTP: events from changes made through the XML interface,
// resumption with Last-Event-ID, heartbeats, and the cut-off of a reader that does not read.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import t from 'tap';
import { eventsRoute, type EventsTuning, type JsonEvent } from '../agent/http/events.ts';
import { LdmEvent } from '../agent/events/bus.ts';
import { createLogger } from '../agent/log.ts';
import { startTestAgent, type TestAgent } from './helpers/agent.ts';
import { cpu, data, request } from './helpers/requests.ts';
import { adminSession, mustSucceed } from './helpers/session.ts';

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const client = await adminSession(agent);
t.teardown(() => client.close());

async function serve(a: TestAgent, tuning: Partial<EventsTuning> = {}): Promise<{ url: string; logLines: string[]; close(): void }> {
  const logLines: string[] = [];
  const log = createLogger('debug', 'http-test', (l) => logLines.push(l));
  const route = eventsRoute({ ldm: a.ldm, migrations: a.migrations, bus: a.bus, users: a.users, log }, tuning);
  const app = express();
  app.get('/api/events', route.handler);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`;
  const close = (): void => {
    route.close();
    server.closeAllConnections();
    server.close();
  };
  t.teardown(close);
  return { url, logLines, close };
}

/** An SSE reader over node:http: parsed frames as they arrive, and the raw text. */
function open(url: string, lastId?: number): Promise<{ res: IncomingMessage; frames: { id?: string; data?: string; comment?: string }[]; raw: () => string; stop(): void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: lastId === undefined ? {} : { 'Last-Event-ID': String(lastId) } }, (res) => {
      const frames: { id?: string; data?: string; comment?: string }[] = [];
      let text = '';
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const f: { id?: string; data?: string; comment?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) f.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) f.id = line.slice(4);
            else if (line.startsWith('data: ')) f.data = line.slice(6);
          }
          frames.push(f);
        }
      });
      res.on('error', () => {});
      resolve({ res, frames, raw: () => text, stop: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

const events = (frames: { data?: string }[]): JsonEvent[] => frames.filter((f) => f.data).map((f) => JSON.parse(f.data!) as JsonEvent);

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('an XML change arrives as JSON; a reconnect with Last-Event-ID resumes with what it missed', async (t) => {
  const { url } = await serve(agent);
  const first = await open(url);
  t.equal(first.res.statusCode, 200);
  t.match(first.res.headers['content-type'], /^text\/event-stream/);

  await mustSucceed(client, request('add-domain', data('web1')));
  await until('the add-domain event', () => events(first.frames).some((e) => e.action === 'add-domain'));
  const added = events(first.frames).find((e) => e.action === 'add-domain')!;
  t.equal(added.class, 'domain');
  t.equal(added.domain, 'web1');
  const lastSeen = added.id;
  first.stop();

  // While no one listens: two more changes.
  await mustSucceed(client, request('add-vcpu', data('web1', cpu(4))));
  await mustSucceed(client, request('remove-domain', data('web1')));

  const again = await open(url, lastSeen);
  await until('the missed events', () => events(again.frames).some((e) => e.action === 'remove-domain'));
  const missed = events(again.frames);
  t.ok(missed.every((e) => e.id > lastSeen), 'nothing already seen is sent again');
  t.same(
    missed.map((e) => [e.class, e.action, e.domain]),
    [
      ['resource', 'add-vcpu', 'web1'],
      ['domain', 'remove-domain', 'web1'],
    ],
  );
  const vcpu = missed[0]!.domains[0]!.items[0]!;
  t.equal(vcpu.type, 'cpu');
  t.equal(vcpu.rasd['AllocationUnits'], '4', 'the resource event carries its item');
  t.same(
    missed.map((e) => e.id),
    [lastSeen + 1, lastSeen + 2],
    'ids increase by one',
  );

  // A fresh connection without Last-Event-ID gets only new events.
  const fresh = await open(url);
  await mustSucceed(client, request('add-domain', data('web2')));
  await until('the new event', () => events(fresh.frames).length > 0);
  t.same(events(fresh.frames).map((e) => e.action), ['add-domain']);
  await mustSucceed(client, request('remove-domain', data('web2')));
  again.stop();
  fresh.stop();
});

t.test('the replay buffer is bounded; heartbeats flow; close() ends the streams', async (t) => {
  const { url, close } = await serve(agent, { replay: 3, heartbeatMs: 50 });
  const ev = (n: number) => new LdmEvent('progress', 'migrate-domain', { contents: [{ id: `d${n}`, sections: [] }], sections: [] });
  for (let n = 1; n <= 10; n++) agent.bus.publish(ev(n));
  const s = await open(url, 0);
  await until('replay and a heartbeat', () => events(s.frames).length === 3 && s.frames.some((f) => f.comment === 'heartbeat'));
  t.same(events(s.frames).map((e) => e.domain), ['d8', 'd9', 'd10'], 'only the last 3 are kept');
  const ended = new Promise((r) => s.res.once('end', r));
  close();
  await ended;
  t.pass('the stream ended when the route closed');
});

t.test('a reader that does not read is cut off past the bound', async (t) => {
  const { url, logLines } = await serve(agent, { maxPendingBytes: 64 * 1024 });
  const s = await open(url);
  s.res.pause();
  const closed = new Promise((r) => s.res.once('close', r));
  const big = 'x'.repeat(4096);
  // Enough to fill the socket buffers of both sides and then the bound.
  for (let n = 0; n < 2000 && !logLines.some((l) => l.includes('slow event stream closed')); n++) {
    agent.bus.publish(new LdmEvent('domain', 'add-domain', { contents: [{ id: `big-${n}-${big}`, sections: [] }], sections: [] }));
    if (n % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  t.ok(logLines.some((l) => l.includes('slow event stream closed')), 'the agent logged the cut-off');
  s.res.resume();
  await closed;
  t.pass('the stalled stream was closed');
});
