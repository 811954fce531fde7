// Responses mirror requests (protocol.md section 3; 3.6 release notes: one response per <data>):
// each object is answered on its own, in order, and one failure hides nothing else. Also the
// bounds on what one document may ask for, and that a long document lets other clients in.
import t from 'tap';
import type { LdmDocument } from '../agent/xml/document.ts';
import { startTestAgent } from './helpers/agent.ts';
import { cpu, data, memory, request } from './helpers/requests.ts';
import { adminSession, ok } from './helpers/session.ts';

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const admin = await adminSession(agent);
t.teardown(() => admin.close());

const must = async (text: string) => {
  const r = await admin.request(text);
  if (!ok(r)) throw new Error(`refused: ${JSON.stringify(r.commands.map((c) => c.data.map((d) => d.response)))}`);
  return r;
};
const listed = (d: LdmDocument['commands'][number]['data'][number]) => d.envelope?.contents.map((c) => c.id) ?? [];

await must(request('add-domain', [data('ldg1', cpu(2), memory('1G')), data('ldg2', cpu(2), memory('1G'))]));

t.test('a listing with two <data> objects answers each, in order; an unknown domain fails only its own', async (t) => {
  const r = await admin.request(request('list-domain', [data('ldg2'), data('nosuch'), data('ldg1')]));
  const cmd = r.commands[0]!;
  t.equal(cmd.data.length, 3, 'three objects in, three out');
  t.same(listed(cmd.data[0]!), ['ldg2']);
  t.equal(cmd.data[0]!.response?.status, 'success');
  t.equal(cmd.data[1]!.response?.status, 'failure');
  t.same(cmd.data[1]!.response?.messages, ['LDom nosuch does not exist']);
  t.same(listed(cmd.data[2]!), ['ldg1'], 'the object after the failure is still listed');
  t.equal(cmd.data[2]!.response?.status, 'success');
  t.equal(cmd.response?.status, 'failure', 'the command fails because one object did');
  t.equal(r.response?.status, 'failure');
});

t.test('an object naming a known and an unknown domain lists the known one and names the unknown', async (t) => {
  const r = await admin.request(request('list-bindings', data('ldg1') .replace('</Envelope>', '<Content ovf:id="ghost"/></Envelope>')));
  const d = r.commands[0]!.data[0]!;
  t.same(listed(d), ['ldg1']);
  t.same(d.response?.messages, ['LDom ghost does not exist']);
});

t.test('an empty listing object lists everything; no <data> at all gets one object back', async (t) => {
  const r1 = await must(request('list-domain'));
  t.same(listed(r1.commands[0]!.data[0]!).sort(), ['ldg1', 'ldg2', 'primary']);
  const r2 = await must('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>');
  t.equal(r2.commands[0]!.data.length, 1);
  t.same(listed(r2.commands[0]!.data[0]!).sort(), ['ldg1', 'ldg2', 'primary']);
});

t.test('changes: each object answered; a refused one does not stop the next', async (t) => {
  const r = await admin.request(request('add-vcpu', [data('ldg1', cpu(1)), data('nosuch', cpu(1)), data('ldg2', cpu(1))]));
  const ds = r.commands[0]!.data;
  t.same(ds.map((d) => d.response?.status), ['success', 'failure', 'success']);
  t.equal(agent.ldm.domain('ldg1')!.vcpus, 3);
  t.equal(agent.ldm.domain('ldg2')!.vcpus, 3);
});

t.test('several commands answered in order, each with its own objects', async (t) => {
  const doc =
    '<LDM_interface version="1.3">' +
    `<cmd><action>list-domain</action>${data('ldg1')}</cmd>` +
    `<cmd><action>list-variable</action>${data('ldg2')}</cmd>` +
    '</LDM_interface>';
  const r = await must(doc);
  t.same(r.commands.map((c) => c.action), ['list-domain', 'list-variable']);
  t.same(listed(r.commands[0]!.data[0]!), ['ldg1']);
  t.same(listed(r.commands[1]!.data[0]!), ['ldg2']);
});

t.test('an unknown or not-implemented action still answers each object with a failure', async (t) => {
  const unknown = await admin.request(request('frobnicate-domain', [data('ldg1'), data('ldg2')]));
  const cmd = unknown.commands[0]!;
  t.equal(cmd.response?.status, 'failure');
  t.match(cmd.response?.messages.join(' '), /frobnicate-domain/);
  t.equal(cmd.data.length, 2);
  for (const d of cmd.data) {
    t.equal(d.response?.status, 'failure', 'no object of an unknown action looks successful');
    t.match(d.response?.messages.join(' '), /not carried out: .*frobnicate-domain/);
  }
  const unsupported = await admin.request(request('add-vdpcc', [data('ldg1'), data('ldg2')]));
  t.same(unsupported.commands[0]!.data.map((d) => d.response?.status), ['failure', 'failure']);
});

t.test('a read user refused a change gets each object answered with the refusal', async (t) => {
  await agent.users.add('reader', 'read', 'reader-secret');
  const reader = await adminSession(agent, 'reader', 'reader-secret');
  t.teardown(() => reader.close());
  const r = await reader.request(request('add-vcpu', [data('ldg1', cpu(1)), data('ldg2', cpu(1))]));
  t.same(r.commands[0]!.data.map((d) => d.response?.status), ['failure', 'failure']);
  t.equal(agent.ldm.domain('ldg1')!.vcpus, 3, 'nothing changed');
});

t.test('too many commands or objects in one document: refused whole, nothing carried out', async (t) => {
  const cmds = Array.from({ length: 257 }, () => `<cmd><action>add-vcpu</action>${data('ldg1', cpu(1))}</cmd>`).join('');
  const r = await admin.request(`<LDM_interface version="1.3">${cmds}</LDM_interface>`);
  t.equal(r.response?.status, 'failure');
  t.match(r.response?.messages.join(' '), /257 commands; at most 256/);
  t.equal(agent.ldm.domain('ldg1')!.vcpus, 3, 'no command of the refused document ran');
  const objs = Array.from({ length: 1025 }, () => data('ldg1')).join('');
  const r2 = await admin.request(request('list-domain', objs));
  t.match(r2.response?.messages.join(' '), /1025 <data> objects; at most 1024/);
});

t.test('a response that would pass its byte budget fails the objects over it, and stays bounded', async (t) => {
  const small = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']], tuning: { manager: { maxResponseBytes: 20_000 } } });
  const c = await adminSession(small);
  t.teardown(() => c.close());
  // A list-bindings of the primary is a few KB: some fit, the rest fail with the reason.
  const r = await c.request(request('list-bindings', Array.from({ length: 40 }, () => data('primary'))));
  const ds = r.commands[0]!.data;
  t.equal(ds.length, 40);
  const okCount = ds.filter((d) => d.response?.status === 'success').length;
  t.ok(okCount > 0 && okCount < 40, `some objects listed (${okCount}), not all`);
  t.same(ds.slice(okCount).map((d) => d.response?.status), Array(40 - okCount).fill('failure'), 'the rest failed, none listed after');
  t.match(ds[okCount]!.response?.messages.join(' '), /would pass .*MiB/);
  t.notOk(ds[okCount]!.envelope, 'an object over the budget carries no listing');
});

t.test('a long document does not hold up another client', async (t) => {
  const other = await adminSession(agent);
  t.teardown(() => other.close());
  const cmds = Array.from({ length: 256 }, () => '<cmd><action>list-bindings</action><data version="3.0"/></cmd>').join('');
  const long = admin.request(`<LDM_interface version="1.3">${cmds}</LDM_interface>`);
  let longDone = false;
  void long.then(() => (longDone = true));
  await new Promise((r) => setTimeout(r, 5));
  const r = await other.request(request('list-domain', data('ldg1')));
  t.ok(ok(r));
  t.notOk(longDone, 'the short request was answered while the long one was still running');
  t.ok(ok(await long));
});

t.test('domain UUIDs are version 8 (RFC 9562: hash-derived), with the RFC variant', async (t) => {
  const r = await must(request('list-domain'));
  const uuids = r.commands[0]!.data[0]!.envelope!.contents.map((c) => c.sections[0]!.items.find((i) => i.type === 'ldom_info')!.uuid);
  t.equal(uuids.length, 3);
  for (const u of uuids) t.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
