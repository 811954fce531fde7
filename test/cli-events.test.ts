// `ldm events` and `ldm xml`, the real executable against real agents (a pair of
// child processes, cluster.ts; each command on its agent's local socket).
// `ldm events` prints one line per event (or the event's XML with -x) until it is
// interrupted (exit 0) or its agent goes away (exit 1); `ldm xml` sends a document
// as written and prints the response, exit 0 only when it succeeded overall.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ldmMessages as lm, refusalMessages } from '../agent/messages.ts';
import { decodeEvent, decodeResponse } from '../agent/xml/decode.ts';
import { cpu, data, request } from './helpers/requests.ts';
import { migrate, startPair } from './helpers/cluster.ts';
import { ldm, startLdm, waitOutput, type LdmProcess } from './helpers/ldm.ts';

const { a, b } = await startPair(t, { a: { config: { migration: { maxBandwidth: 8e6 } } } });
await Promise.all([a.services(), b.services()]);
await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '16M', 'sim-dirty-rate': '1M' } });

const dir = mkdtempSync(join(tmpdir(), 'ldm-cli-events-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** `ldm events ARGS` on `state`, once it has registered. */
async function events(state: string, args: string[]): Promise<LdmProcess> {
  const run = startLdm(['events', ...args], { state, timeoutMs: 40_000 });
  await waitOutput(run, (_out, err) => err.includes('listening for'), 20_000, 'the registration');
  return run;
}

t.test('events progress: a line per progress event of a migration, then SIGINT ends it with 0', async (t) => {
  const run = await events(a.state, ['progress']);
  t.equal(run.stderr(), `${lm.eventsListening('progress')}\n`);
  const r = await migrate(a, b, 'ldg1');
  t.ok(r.ok, r.all.join(' | '));
  await waitOutput(run, (out) => out.includes(' done '), 10_000, 'the last progress event');
  run.proc.kill('SIGINT');
  const end = await run.done;
  t.equal(end.code, 0, 'interrupted: exit 0');
  const got = lines(end.stdout);
  for (const l of got) t.match(l, /^migrate-domain ldg1 \d{1,3}% (ongoing|done) source=alpha$/, l);
  t.ok(got.some((l) => /^migrate-domain ldg1 ([1-9]\d?)% ongoing /.test(l)), 'progress while it ran');
  t.equal(got.at(-1), 'migrate-domain ldg1 100% done source=alpha', 'the last one says done');
});

t.test('events (all): domain and resource lines; -x prints each event as XML', async (t) => {
  const plain = await events(b.state, []);
  const xml = await events(b.state, ['-x', 'domain']);
  await b.must(request('add-domain', data('evt')));
  await b.must(request('add-vcpu', data('evt', cpu(8))));
  await waitOutput(plain, (out) => out.includes('add-vcpu'), 10_000, 'the add-vcpu event');
  await waitOutput(xml, (out) => out.includes('</LDM_event>'), 10_000, 'the add-domain event as XML');
  plain.proc.kill('SIGTERM');
  xml.proc.kill('SIGINT');
  const [p, x] = await Promise.all([plain.done, xml.done]);
  t.equal(p.code, 0, 'SIGTERM: exit 0');
  t.same(lines(p.stdout), ['add-domain evt', 'add-vcpu evt cpu AllocationUnits=8']);
  t.equal(x.code, 0);
  const ev = decodeEvent(x.stdout.trim());
  t.equal(ev.commands[0]?.action, 'add-domain', 'the XML is the LDM_event document');
  t.equal(ev.commands[0]?.data[0]?.envelope?.contents[0]?.id, 'evt');
  t.notMatch(x.stdout, 'add-vcpu', 'domain events only: no resource event');
});

t.test('bad usage: exit 2', async (t) => {
  const r = await ldm(['events', 'everything'], { state: b.state });
  t.equal(r.code, 2);
  t.match(r.stderr, lm.eventsClass('everything'));
});

t.test('xml FILE: the document as written, declaration included; the response printed, exit 0', async (t) => {
  const f = join(dir, 'list.xml');
  writeFileSync(f, `<?xml version="1.0" encoding="UTF-8"?>\n<!-- as an operator writes it -->\n${request('list-domain', data('primary'))}\n`);
  const r = await ldm(['xml', f], { state: b.state });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<LDM_interface /);
  const doc = decodeResponse(r.stdout);
  t.equal(doc.response?.status, 'success');
  t.equal(doc.commands[0]?.data[0]?.envelope?.contents[0]?.id, 'primary', 'primary is listed');
});

t.test('xml -: from standard input; a failed request prints its response and exits 1', async (t) => {
  const r = await ldm(['xml', '-'], { state: b.state, input: request('list-domain', data('nosuch')) });
  t.equal(r.code, 1);
  const doc = decodeResponse(r.stdout);
  t.equal(doc.response?.status, 'failure');
  t.same(doc.commands[0]?.data[0]?.response?.messages, [refusalMessages.noSuchDomain('nosuch')]);
  const broken = await ldm(['xml', '-'], { state: b.state, input: '<LDM_interface version="1.3">\n<cmd></LDM_interface>' });
  t.equal(broken.code, 1);
  t.match(broken.stderr, /^ldm: standard input:2: .*; nothing was sent\n$/);
  t.equal(broken.stdout, '');
});

t.test('events: the agent going away ends the command with 1', async (t) => {
  const run = await events(b.state, ['all']);
  await b.stop();
  const r = await run.done;
  t.equal(r.code, 1);
  t.match(r.stderr, 'ldm: the connection to the Logical Domains Manager was lost: ');
});
