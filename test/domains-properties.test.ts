// A domain's properties are kept, listed and read back (list-constraints fed
// back as add-domain); what the agent does not support is warned about by
// name, never dropped in silence; disks and networks are numbered apart; a
// host id keeps the form it was given.
import t from 'tap';
import type { Content, Item, LdmDocument } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { startTestAgent } from './helpers/agent.ts';
import { cpu, data, itemXml, memory, request, type ItemSpec } from './helpers/requests.ts';
import { adminSession, messages, mustSucceed, refusalOf } from './helpers/session.ts';

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const admin = await adminSession(agent);
t.teardown(() => admin.close());

const must = (text: string) => mustSucceed(admin, text);
const refused = (text: string) => refusalOf(admin, text);
/** The 3.6 second object response: the warnings of every object of the first command. */
const warnings = (doc: LdmDocument) => doc.commands[0]!.data.flatMap((d) => d.warning?.messages ?? []);
const info = (props: Record<string, string>): ItemSpec => ({ type: 'ldom_info', props });
/** An ldom_info item with the 3.x `<uuid>` element, as Oracle's guide writes it. */
const infoWithUuid = (uuid: string, props: Record<string, string> = {}) =>
  itemXml(info(props)).replace('</rasd:OtherResourceType>', `</rasd:OtherResourceType><uuid>${uuid}</uuid>`);
const withItems = (domain: string, itemsXml: string) =>
  `<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${domain}"><Section xsi:type="ovf:VirtualHardwareSection_Type">${itemsXml}</Section></Content></Envelope></data>`;
/** The one Content a listing of one domain answers with. */
async function listed(action: string, domain: string): Promise<Content> {
  return (await must(request(action, data(domain)))).commands[0]!.data[0]!.envelope!.contents[0]!;
}
const ldomInfo = (c: Content): Item => c.sections[0]!.items.find((i) => i.type === 'ldom_info')!;

await must(request('add-vdiskserver', data(null, { type: 'vds', props: { service_name: 'primary-vds0' } })));
await must(request('add-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/v1' } })));
await must(request('add-vswitch', data(null, { type: 'vsw', props: { service_name: 'primary-vsw0' } })));
await must(request('add-vconscon', data(null, { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));

const UUID = '6c908858-12ef-e520-9eb3-f1cd3dbc3a59';

t.test('uuid, extended-mapin-space, rc-add-policy and the other ldom_info keys survive list-constraints -> add-domain', async (t) => {
  const props = {
    'extended-mapin-space': 'on',
    'rc-add-policy': 'iov',
    'failure-policy': 'stop',
    'boot-policy': 'enforce',
    'shutdown-group': '7',
    'max-cores': '2',
    'perf-counters': 'strand',
    hostid: '84F8ABCD',
  };
  const added = await must(request('add-domain', withItems('ldg1', infoWithUuid(UUID, props))));
  t.same(warnings(added), [], 'every key is supported: no warning');
  await must(request('add-vcpu', data('ldg1', cpu(1, 2))));
  await must(request('add-memory', data('ldg1', memory('1G'))));

  const before = await listed('list-constraints', 'ldg1');
  const item = ldomInfo(before);
  t.equal(item.uuid, UUID, 'the uuid given is the uuid listed');
  for (const [key, value] of Object.entries(props)) t.equal(item.props.get(key), value, `${key} is listed as given`);
  t.equal(ldomInfo(await listed('list-domain', 'ldg1')).props.get('extended-mapin-space'), 'on', 'list-domain shows it too');
  t.equal(ldomInfo(await listed('list-bindings', 'ldg1')).props.get('rc-add-policy'), 'iov', 'and list-bindings');

  await must(request('remove-domain', data('ldg1')));
  const again: LdmDocument = {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: 'add-domain', options: [], arguments: [], data: [{ version: '3.0', envelope: { contents: [before], sections: [] } }] }],
  };
  const readded = await must(encodeDocument(again));
  t.same(warnings(readded), [], 'list-constraints output reads back without a warning');
  const after = await listed('list-constraints', 'ldg1');
  const comparable = (c: Content) => JSON.stringify(c, (_k, v) => (v instanceof Map ? [...v] : v));
  t.equal(comparable(after), comparable(before), 'the same domain, uuid included');
  const d = agent.ldm.domain('ldg1')!;
  t.same([d.uuid, d.extendedMapinSpace, d.rcAddPolicy, d.hostid], [UUID, 'on', 'iov', '84F8ABCD']);
});

t.test('list-domain and list-bindings output sent back reads without absurd warnings', async (t) => {
  const bound = await listed('list-bindings', 'ldg1');
  await must(request('remove-domain', data('ldg1')));
  const doc: LdmDocument = {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: 'add-domain', options: [], arguments: [], data: [{ version: '3.0', envelope: { contents: [bound], sections: [] } }] }],
  };
  const r = await must(encodeDocument(doc));
  t.same(warnings(r), [], 'state, flags and bindings are output only: read without a word');
  t.equal(agent.ldm.domain('ldg1')!.uuid, UUID);
});

t.test('the uuid: its form, its uniqueness, fixed after add-domain', async (t) => {
  t.equal(await refused(request('add-domain', withItems('ldg2', infoWithUuid('6c908858-12ef-e520-9eb3')))), 'Invalid UUID "6c908858-12ef-e520-9eb3" (expected the form 6c908858-12ef-e520-9eb3-f1cd3dbc3a59)');
  t.equal(await refused(request('add-domain', withItems('ldg2', infoWithUuid(UUID.toUpperCase())))), `UUID ${UUID} is already used by LDom ldg1`);
  t.equal(agent.ldm.domain('ldg2'), undefined, 'nothing was added');
  // As a GenericProperty too (the CLI's uuid=...).
  const other = '0f0e0d0c-0b0a-4908-8706-050403020100';
  await must(request('add-domain', data('ldg2', info({ uuid: other }))));
  t.equal(agent.ldm.domain('ldg2')!.uuid, other);
  t.match(await refused(request('add-domain', withItems('ldg3', infoWithUuid(UUID, { uuid: other })))), /its uuid element \(6c908858-.*\) and uuid property \(0f0e0d0c-.*\) differ/);
  // set-domain may repeat the domain's own uuid (list-domain output sent back), not change it.
  await must(request('set-domain', withItems('ldg2', infoWithUuid(other, { 'failure-policy': 'panic' }))));
  t.equal(await refused(request('set-domain', withItems('ldg2', infoWithUuid(UUID)))), 'The UUID of LDom ldg2 is given when the domain is created (add-domain) and cannot be changed');
});

t.test('a property the agent does not support is warned about by name; a bad value is refused by name', async (t) => {
  const r = await must(request('add-domain', data('ldg3', info({ threading: 'max-ipc', 'failure-policy': 'reset' }))));
  t.same(warnings(r), ['ldom_info item: add-domain does not use threading: ignored']);
  t.equal(agent.ldm.domain('ldg3')!.failurePolicy, 'reset', 'the rest is applied');
  const cpuWarn = await must(request('add-vcpu', data('ldg3', { type: 'cpu', rasd: { AllocationUnits: '2', InstanceID: '7' }, props: { 'cpu-speed': 'fast' } })));
  t.same(warnings(cpuWarn), ['cpu item: add-vcpu does not use rasd:InstanceID, cpu-speed: ignored']);
  const itemWarn = await must(request('bind-domain', data('ldg1', memory('1G'))));
  t.same(warnings(itemWarn), ['the memory item was ignored: bind-domain does not use it']);
  await must(request('unbind-domain', data('ldg1')));
  const twice = await must(request('add-memory', data('ldg3', memory('1G'), memory('2G'))));
  t.same(warnings(twice), ['a further memory item was ignored: add-memory takes one'], 'a second item of the same resource is named too');
  t.equal(await refused(request('set-domain', data('ldg3', info({ 'extended-mapin-space': 'maybe' })))), 'Invalid value "maybe" for extended-mapin-space (valid: on, off)');
  t.equal(await refused(request('set-domain', data('ldg3', info({ 'rc-add-policy': 'sriov' })))), 'Invalid value "sriov" for rc-add-policy (valid: iov, (empty))');
  t.equal(await refused(request('set-domain', data('ldg3', info({ 'shutdown-group': '0' })))), 'Invalid shutdown group "0" for LDom ldg3 (valid: 1 to 15)');
  t.equal(await refused(request('set-domain', data('primary', info({ 'shutdown-group': '3' })))), 'The shutdown group of the control domain primary is always 0, not 3');
  t.equal(await refused(request('set-domain', data('ldg3', info({ 'max-cores': '9' })))), 'Invalid value "9" for max-cores (valid: unlimited, 1 to 8)');
  t.equal(agent.ldm.domain('ldg3')!.extendedMapinSpace, 'off', 'refused values are not kept');
});

t.test('max-cores bounds whole cores; only one domain has the global performance counters', async (t) => {
  await must(request('set-domain', data('ldg3', info({ 'max-cores': '1' }))));
  await must(request('set-vcpu', data('ldg3', cpu(1, 1))));
  t.equal(await refused(request('set-vcpu', data('ldg3', cpu(2, 2)))), 'LDom ldg3 would have 2 whole cores: more than its max-cores (1)');
  await must(request('set-domain', data('ldg3', info({ 'perf-counters': 'global,htstrand' }))));
  t.equal(await refused(request('set-domain', data('ldg2', info({ 'perf-counters': 'global' })))), 'The global performance counters are already given to LDom ldg3: only one domain at a time may have them');
  t.equal(await refused(request('set-domain', data('ldg2', info({ 'perf-counters': 'strand,htstrand' })))), 'Invalid perf-counters "strand,htstrand": each set at most once, and strand and htstrand not together');
  await must(request('set-domain', data('ldg2', info({ 'perf-counters': '' }))));
  t.equal(agent.ldm.domain('ldg2')!.perfCounters, '', 'no access at all');
});

t.test('disks and networks are numbered apart: disk@0 and network@0 in one domain', async (t) => {
  await must(request('add-domain', data('ldg4')));
  await must(request('add-vcpu', data('ldg4', cpu(2))));
  await must(request('add-memory', data('ldg4', memory('1G'))));
  await must(request('add-vnet', data('ldg4', { type: 'network', props: { vnet_name: 'net0', service_name: 'primary-vsw0' } })));
  await must(request('add-vdisk', data('ldg4', { type: 'disk', props: { vdisk_name: 'root', vol_name: 'vol1', service_name: 'primary-vds0' } })));
  await must(request('add-vnet', data('ldg4', { type: 'network', props: { vnet_name: 'net1', service_name: 'primary-vsw0' } })));
  await must(request('bind-domain', data('ldg4')));
  const items = (await listed('list-bindings', 'ldg4')).sections[0]!.items;
  const device = (type: string, key: string, name: string) => items.find((i) => i.type === type && i.props.get(key) === name)!.bindings[0]!.props.get('device');
  t.equal(device('disk', 'vdisk_name', 'root'), 'disk@0');
  t.equal(device('network', 'vnet_name', 'net0'), 'network@0');
  t.equal(device('network', 'vnet_name', 'net1'), 'network@1');
  // A freed id is given again, per kind.
  await must(request('unbind-domain', data('ldg4')));
  await must(request('remove-vnet', data('ldg4', { type: 'network', props: { vnet_name: 'net0' } })));
  await must(request('add-vnet', data('ldg4', { type: 'network', props: { vnet_name: 'net2', service_name: 'primary-vsw0' } })));
  t.same(agent.ldm.domain('ldg4')!.vnets.map((n) => [n.name, n.id]), [['net1', 1], ['net2', 0]]);
});

t.test('a host id keeps the form it was given; duplicates are found by value', async (t) => {
  await must(request('add-domain', data('ldg5', info({ hostid: '0x84F8BEEF' }))));
  t.equal(ldomInfo(await listed('list-domain', 'ldg5')).props.get('hostid'), '0x84F8BEEF', 'upper case and 0x kept');
  await must(request('set-domain', data('ldg5', info({ hostid: '84f8beef' }))));
  t.equal(ldomInfo(await listed('list-constraints', 'ldg5')).props.get('hostid'), '84f8beef', 'no 0x, as given');
  t.equal(await refused(request('add-domain', data('ldg6', info({ hostid: '0x84F8BEEF' })))), 'Host ID 0x84F8BEEF is already used by LDom ldg5');
  t.equal(await refused(request('set-domain', data('ldg4', info({ hostid: '84f8abcd' })))), 'Host ID 84f8abcd is already used by LDom ldg1');
  t.equal(await refused(request('set-domain', data('ldg4', info({ hostid: '0x1234567890' })))), 'Invalid value "0x1234567890" for hostid (valid: a 32-bit hexadecimal number)');
});

t.test('list-domain output sent back as set-domain to a bound domain: only real changes need it inactive', async (t) => {
  await must(request('bind-domain', data('ldg4')));
  const listedContent = await listed('list-domain', 'ldg4');
  // Its ldom_info item only: set-domain uses no other (the others would be warned about as ignored).
  const content: Content = { ...listedContent, sections: [{ ...listedContent.sections[0]!, items: [ldomInfo(listedContent)] }] };
  const doc: LdmDocument = {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: 'set-domain', options: [], arguments: [], data: [{ version: '3.0', envelope: { contents: [content], sections: [] } }] }],
  };
  const r = await must(encodeDocument(doc));
  t.same(warnings(r), [], 'its own hostid, MAC address and uuid repeated: accepted without a word');
  t.equal(await refused(request('set-domain', data('ldg4', info({ hostid: '0x1' })))), 'LDom ldg4 is bound: its hostid can only be changed while it is inactive');
});

t.test('the same warning for many items is given once, with their count', async (t) => {
  const vars = Array.from({ length: 200 }, (_, i) => ({ type: 'var', props: { name: `v${i}`, value: 'x', scope: 'local' } }));
  const r = await must(request('add-variable', data('ldg3', ...vars, memory('1G'), memory('2G'))));
  t.same(warnings(r), ['var item: add-variable does not use scope: ignored (200 items); the memory item was ignored: add-variable does not use it (2 items)'], 'one resp_msg, as 3.6 has it');
});
