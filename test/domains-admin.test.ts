// What an administrator does, over the XML interface on TLS: services on the primary,
// a guest with 8 vCPUs, 2G, a vdisk and a vnet; bind, start, every listing; then back down.
import t from 'tap';
import { decodeResponse } from '../agent/xml/decode.ts';
import type { Content, LdmDocument } from '../agent/xml/document.ts';
import { loadSchemas } from '../agent/xml/schema.ts';
import { startTestAgent } from './helpers/agent.ts';
import { onlineRawPeer } from './helpers/raw.ts';
import { cpu, data, memory, request } from './helpers/requests.ts';
import { showProblems } from './helpers/schema.ts';
import { adminSession, messages, ok } from './helpers/session.ts';

const schemas = await loadSchemas();
const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const admin = await adminSession(agent);
const events: string[] = [];
const eventDocs: LdmDocument[] = [];
admin.onEvent((ev) => eventDocs.push(ev));
admin.onEvent((ev) => events.push(`${ev.commands[0]!.action} ${ev.commands[0]!.data[0]?.envelope?.contents[0]?.id ?? ''}`.trim()));
t.teardown(() => admin.close());

async function must(text: string): Promise<LdmDocument> {
  const r = await admin.request(text);
  if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}\n${text}`);
  return r;
}

const raw = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
t.teardown(() => raw.destroy());
let listings = 0;
/** A listing as the bytes the agent sent, checked against schemas/, then decoded. */
async function listing(action: string, domain?: string): Promise<LdmDocument> {
  const mark = raw.text.length;
  raw.write(request(action, domain ? data(domain) : undefined));
  const seen = await raw.until(/<\/LDM_interface>/, 5000, mark);
  const text = seen.slice(seen.indexOf('<LDM_interface'), seen.indexOf('</LDM_interface>') + '</LDM_interface>'.length);
  const problems = schemas.validate('LDM_interface', text);
  if (problems.length > 0) throw new Error(`${action} does not validate:\n${showProblems(problems)}`);
  listings++;
  return decodeResponse(text);
}

const contentOf = (doc: LdmDocument, id: string): Content | undefined => doc.commands[0]!.data[0]!.envelope!.contents.find((c) => c.id === id);
const itemsOf = (c: Content | undefined, type: string) => (c?.sections ?? []).flatMap((s) => s.items).filter((i) => i.type === type);

t.test('services on the primary: vds, a volume, vsw, vcc', async (t) => {
  await must(request('add-vdiskserver', data(null, { type: 'vds', props: { service_name: 'primary-vds0' } })));
  await must(request('add-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/ldoms/ldg1' } })));
  await must(request('add-vswitch', data('primary', { type: 'vsw', props: { service_name: 'primary-vsw0', dev_path: 'net0' } })));
  await must(request('add-vconscon', data('primary', { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));
  const services = await listing('list-services');
  const primary = contentOf(services, 'primary');
  t.same(itemsOf(primary, 'vds').map((i) => i.props.get('service_name')), ['primary-vds0']);
  t.same(itemsOf(primary, 'vds_volume').map((i) => [i.props.get('vol_name'), i.props.get('block_dev')]), [['vol1', '/dev/zvol/dsk/ldoms/ldg1']]);
  t.equal(itemsOf(primary, 'vsw')[0]!.props.get('dev_path'), 'net0');
  t.match(itemsOf(primary, 'vsw')[0]!.rasd.get('Address'), /^00:14:4f:f[89ab]:[0-9a-f]{2}:[0-9a-f]{2}$/);
  t.same(itemsOf(primary, 'vcc').map((i) => [i.props.get('min_port'), i.props.get('max_port')]), [['5000', '5100']]);
  const list = await listing('list-domain', 'primary');
  t.equal(itemsOf(contentOf(list, 'primary'), 'ldom_info')[0]!.props.get('flags'), '-n-cv-', 'the primary is now a service domain');
});

t.test('a guest: 8 vCPUs, 2G, a vdisk and a vnet; bound and started', async (t) => {
  await must(request('add-domain', data('ldg1')));
  await must(request('add-vcpu', data('ldg1', cpu(8))));
  await must(request('add-memory', data('ldg1', memory('2G'))));
  await must(request('add-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'vdisk1', vol_name: 'vol1', service_name: 'primary-vds0' } })));
  await must(request('add-vnet', data('ldg1', { type: 'network', props: { vnet_name: 'vnet1', service_name: 'primary-vsw0' } })));
  let info = itemsOf(contentOf(await listing('list-domain', 'ldg1'), 'ldg1'), 'ldom_info')[0]!;
  t.equal(info.props.get('state'), 'inactive');
  t.equal(info.props.get('flags'), '------');
  await must(request('bind-domain', data('ldg1')));
  info = itemsOf(contentOf(await listing('list-domain', 'ldg1'), 'ldg1'), 'ldom_info')[0]!;
  t.equal(info.props.get('state'), 'bound');
  await must(request('start-domain', data('ldg1')));
  const list = await listing('list-domain');
  const ldg1 = contentOf(list, 'ldg1');
  info = itemsOf(ldg1, 'ldom_info')[0]!;
  t.equal(info.props.get('state'), 'active');
  t.equal(info.props.get('flags'), '-n----');
  t.equal(info.props.get('softstate'), 'Solaris running');
  t.match(info.uuid, /^[0-9a-f-]{36}$/);
  t.equal(itemsOf(ldg1, 'cpu')[0]!.rasd.get('AllocationUnits'), '8');
  t.equal(itemsOf(ldg1, 'memory')[0]!.rasd.get('AllocationUnits'), '2G');
  t.equal(itemsOf(ldg1, 'console')[0]!.props.get('port'), '5000', 'the first port of the vcc');
  t.ok(contentOf(list, 'primary'), 'the primary is listed too');
});

t.test('every listing action, each valid against the schemas', async (t) => {
  const bindings = contentOf(await listing('list-bindings', 'ldg1'), 'ldg1');
  const cpuBindings = itemsOf(bindings, 'cpu')[0]!.bindings;
  t.equal(cpuBindings.length, 8, 'one binding per vCPU');
  t.same(cpuBindings.map((b) => b.props.get('vid')), ['0', '1', '2', '3', '4', '5', '6', '7']);
  const pids = cpuBindings.map((b) => Number(b.props.get('pid')));
  t.ok(pids.every((p) => p >= 8), 'strands after the primary\'s');
  const mem = itemsOf(bindings, 'memory')[0]!.bindings;
  t.same(mem.map((b) => [b.props.get('ra'), b.props.get('size')]), [['0x8000000', '2G']]);
  t.equal(itemsOf(bindings, 'disk')[0]!.bindings[0]!.props.get('backend'), '/dev/zvol/dsk/ldoms/ldg1');
  t.equal(itemsOf(bindings, 'network')[0]!.bindings[0]!.props.get('peer'), 'primary-vsw0@primary', 'switch@service domain, as ldm prints it');

  const constraints = contentOf(await listing('list-constraints', 'ldg1'), 'ldg1');
  t.equal(itemsOf(constraints, 'ldom_info')[0]!.props.get('state'), undefined, 'constraints carry no state');
  t.equal(itemsOf(constraints, 'cpu')[0]!.rasd.get('AllocationUnits'), '8');
  t.same(itemsOf(constraints, 'disk')[0]!.props.get('vol_name'), 'vol1');

  const devices = await listing('list-devices');
  const free = devices.commands[0]!.data[0]!.envelope!.sections[0]!.items;
  t.equal(free.find((i) => i.type === 'cpu')!.rasd.get('AllocationUnits'), '48', '64 strands - 8 primary - 8 ldg1');
  t.equal(free.find((i) => i.type === 'memory')!.rasd.get('AllocationUnits'), '58G', '64G - 4G primary - 2G ldg1');

  await must(request('add-variable', data('ldg1', { type: 'var', props: { name: 'boot-device', value: 'vdisk1' } })));
  const vars = contentOf(await listing('list-variable', 'ldg1'), 'ldg1');
  t.same(itemsOf(vars, 'var').map((i) => [i.props.get('name'), i.props.get('value')]), [['boot-device', 'vdisk1']]);

  await must(request('add-spconfig', data(null, { type: 'spconfig', props: { spconfig_name: 'with-ldg1' } })));
  const sp = (await listing('list-spconfig')).commands[0]!.data[0]!.envelope!.sections[0]!.items;
  t.same(sp.map((i) => [i.props.get('spconfig_name'), i.props.get('spconfig_status') ?? '']), [['factory-default', ''], ['with-ldg1', 'current']]);
  t.ok(listings >= 9, `${listings} listings validated`);
});

t.test('stopped, unbound and removed', async (t) => {
  await must(request('stop-domain', data('ldg1')));
  t.equal(itemsOf(contentOf(await listing('list-domain', 'ldg1'), 'ldg1'), 'ldom_info')[0]!.props.get('state'), 'bound');
  await must(request('unbind-domain', data('ldg1')));
  const devices = await listing('list-devices');
  t.equal(devices.commands[0]!.data[0]!.envelope!.sections[0]!.items.find((i) => i.type === 'cpu')!.rasd.get('AllocationUnits'), '56', 'the strands are free again');
  await must(request('remove-domain', data('ldg1')));
  const list = await listing('list-domain');
  t.same(list.commands[0]!.data[0]!.envelope!.contents.map((c) => c.id), ['primary']);
});

t.test('every change was announced to the registered client', async (t) => {
  await must(request('reg-all-events'));
  await must(request('add-domain', data('ldg2')));
  await must(request('add-vcpu', data('ldg2', cpu(4))));
  await must(request('remove-domain', data('ldg2')));
  await admin.request(request('list-domain'));
  t.same(events, ['add-domain ldg2', 'add-vcpu ldg2', 'remove-domain ldg2']);
  const cpuEvent = eventDocs[1]!.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!;
  t.equal(cpuEvent.type, 'cpu', 'a resource event describes the resource as an Item');
  t.equal(cpuEvent.rasd.get('AllocationUnits'), '4', 'with its new amount');
});
