// list-constraints output fed back as add-domain input recreates the domain; guests boot
// to the OS or to the OpenBoot ok prompt as their variables say.
import t from 'tap';
import type { Content, LdmDocument } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { startTestAgent } from './helpers/agent.ts';
import { cpu, data, mau, memory, request, variable } from './helpers/requests.ts';
import { adminSession, messages, ok } from './helpers/session.ts';

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const admin = await adminSession(agent);
t.teardown(() => admin.close());
async function must(text: string): Promise<LdmDocument> {
  const r = await admin.request(text);
  if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}`);
  return r;
}
const softstate = async (name: string) => {
  const r = await must(request('list-domain', data(name)));
  return r.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items.find((i) => i.type === 'ldom_info')!.props.get('softstate');
};

await must(request('add-vdiskserver', data(null, { type: 'vds', props: { service_name: 'primary-vds0' } })));
await must(request('add-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/v1', vol_opts: 'ro,slice' } })));
await must(request('add-vswitch', data(null, { type: 'vsw', props: { service_name: 'primary-vsw0' } })));
await must(request('add-vconscon', data(null, { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5010' } })));

t.test('list-constraints output, sent back as add-domain, recreates the same domain', async (t) => {
  await must(request('add-domain', data('ldg1', { type: 'ldom_info', props: { 'failure-policy': 'reset', 'cpu-arch': 'generic' } })));
  await must(request('add-vcpu', data('ldg1', cpu(2, 2))));
  await must(request('add-mau', data('ldg1', mau(1))));
  await must(request('add-memory', data('ldg1', memory('1536M'))));
  await must(request('add-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'root', vol_name: 'vol1', service_name: 'primary-vds0', timeout: '30' } })));
  await must(request('add-vnet', data('ldg1', { type: 'network', props: { vnet_name: 'net0', service_name: 'primary-vsw0', pvid: '3' } })));
  await must(request('add-variable', data('ldg1', variable('auto-boot?', 'false'), variable('boot-device', 'root'))));
  await must(request('set-vconsole', data('ldg1', { type: 'console', props: { group: 'grp1', service_name: 'primary-vcc0' } })));

  const listed = await must(request('list-constraints', data('ldg1')));
  const before = listed.commands[0]!.data[0]!.envelope!.contents[0]!;
  await must(request('remove-domain', data('ldg1')));
  t.equal(agent.ldm.domain('ldg1'), undefined);

  // The listing's own object becomes the request's object.
  const again: LdmDocument = {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: 'add-domain', options: [], arguments: [], data: [{ version: '3.0', envelope: listed.commands[0]!.data[0]!.envelope! }] }],
  };
  await must(encodeDocument(again));
  const after = (await must(request('list-constraints', data('ldg1')))).commands[0]!.data[0]!.envelope!.contents[0]!;
  const comparable = (c: Content) => JSON.stringify(c, (k, v) => (k === 'uuid' ? undefined : v instanceof Map ? [...v] : v));
  t.equal(comparable(after), comparable(before), 'the same constraints, item for item');
  const d = agent.ldm.domain('ldg1')!;
  t.equal(d.wholeCores, 2);
  t.equal(d.memory, 1536 * 2 ** 20, '1536M was already a multiple of 256M');
  t.same(d.vdisks.map((v) => [v.name, v.timeout]), [['root', 30]]);
  t.same(d.vnets.map((n) => [n.name, n.pvid]), [['net0', 3]]);
  t.same(d.variables, [['auto-boot?', 'false'], ['boot-device', 'root']]);
  t.equal(d.console.group, 'grp1');
});

t.test('a guest with auto-boot? false waits at the ok prompt; sim-state moves it', async (t) => {
  await must(request('bind-domain', data('ldg1')));
  t.equal(agent.ldm.domain('ldg1')!.bindings!.strands.length, 16, 'two whole cores of 8 strands');
  t.equal(agent.ldm.domain('ldg1')!.bindings!.mau.length, 1, 'a crypto unit on one of its cores');
  await must(request('start-domain', data('ldg1')));
  t.equal(await softstate('ldg1'), 'OpenBoot Running');
  await must(request('stop-domain', data('ldg1')));
  await must(request('set-variable', data('ldg1', variable('auto-boot?', 'true'))));
  await must(request('start-domain', data('ldg1')));
  t.equal(await softstate('ldg1'), 'Solaris running');
  await must(request('set-variable', data('ldg1', variable('sim-state', 'kmdb'))));
  t.equal(await softstate('ldg1'), 'Solaris debugging');
  await must(request('set-variable', data('ldg1', variable('sim-state', 'openboot'))));
  t.equal(await softstate('ldg1'), 'OpenBoot Running');
});

t.test('a started domain runs a guest of its bound memory; stopping it scrubs and destroys the guest', async (t) => {
  await must(request('stop-domain', data('ldg1')));
  await must(request('add-variable', data('ldg1', variable('sim-working-set', '16M'), variable('sim-fill', 'random'))));
  await must(request('set-variable', data('ldg1', variable('sim-state', 'solaris'))));
  await must(request('start-domain', data('ldg1')));
  const guest = agent.guests.hypervisor.guest('ldg1')!;
  t.equal(guest.memoryBytes, 1536 * 2 ** 20, 'the guest has the bound memory');
  t.equal(guest.runState, 'solaris');
  await guest.whenFilled();
  t.equal(guest.touchedPages, 2048, 'the 16M working set is filled, the rest untouched');
  const refusedSize = await admin.request(request('set-variable', data('ldg1', variable('sim-working-set', 'lots'))));
  t.equal(refusedSize.response?.status, 'failure');
  t.match(messages(refusedSize).join(), /sim-working-set/);
  const tooBig = await admin.request(request('set-variable', data('ldg1', variable('sim-working-set', '2G'))));
  t.match(messages(tooBig).join(), /sim-working-set of LDom ldg1 \(2147483648 bytes\) is larger than its memory/);
  t.equal(agent.ldm.domain('ldg1')!.variables.find(([k]) => k === 'sim-working-set')?.[1], '16M', 'the refused values were not kept');
  await must(request('stop-domain', data('ldg1')));
  t.equal(agent.guests.hypervisor.guest('ldg1'), undefined, 'the guest is gone');
  t.match(agent.logLines.join(''), /guest destroyed domain=ldg1 scrubbedPages=\d+ scrubMs=/);
});

t.test('memory sizes are rounded up to 256M, with a warning', async (t) => {
  await must(request('add-domain', data('ldg2')));
  const r = await must(request('add-memory', data('ldg2', memory('1000M'))));
  t.same(r.commands[0]!.data[0]!.warning?.messages, ['Memory size 1000M was rounded up to 1G (memory is allocated in 256M units)']);
  t.equal(agent.ldm.domain('ldg2')!.memory, 2 ** 30);
});
