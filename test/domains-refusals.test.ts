// What the manager refuses, and in which words; a refused change leaves nothing behind.
import t from 'tap';
import { startTestAgent } from './helpers/agent.ts';
import { cpu, data, memory, request } from './helpers/requests.ts';
import { adminSession, messages, mustSucceed, ok } from './helpers/session.ts';

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
const admin = await adminSession(agent);
t.teardown(() => admin.close());

const must = (text: string) => mustSucceed(admin, text);
/** The refusal text of a request that must fail at object level. */
async function refused(text: string): Promise<string> {
  const r = await admin.request(text);
  if (ok(r)) throw new Error('expected a refusal');
  if (r.commands[0]!.response?.status !== 'failure') throw new Error('command should fail');
  return messages(r).join('; ');
}
const state = (name: string) => agent.ldm.domain(name)?.state;

await must(request('add-vdiskserver', data(null, { type: 'vds', props: { service_name: 'primary-vds0' } })));
await must(request('add-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/v1' } })));
await must(request('add-vswitch', data(null, { type: 'vsw', props: { service_name: 'primary-vsw0' } })));
await must(request('add-vconscon', data(null, { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));

t.test('unknown domain and duplicate name', async (t) => {
  t.equal(await refused(request('bind-domain', data('ldg9'))), 'LDom ldg9 does not exist');
  t.equal(await refused(request('add-vcpu', data('ldg9', cpu(2)))), 'LDom ldg9 does not exist');
  t.equal(await refused(request('list-domain', data('ldg9'))), 'LDom ldg9 does not exist');
  await must(request('add-domain', data('ldg1')));
  t.equal(await refused(request('add-domain', data('ldg1'))), 'LDom ldg1 already exists');
  t.equal(await refused(request('add-domain', data('9bad name'))), 'Invalid domain name: 9bad name');
});

t.test('not enough CPUs or memory: the bind is refused and nothing is allocated', async (t) => {
  await must(request('add-vcpu', data('ldg1', cpu(60))));
  await must(request('add-memory', data('ldg1', memory('2G'))));
  t.equal(await refused(request('bind-domain', data('ldg1'))), 'Not enough free CPUs to meet this request: 60 requested, 56 free');
  t.equal(state('ldg1'), 'inactive');
  await must(request('set-vcpu', data('ldg1', cpu(4))));
  await must(request('set-memory', data('ldg1', memory('100G'))));
  t.equal(await refused(request('bind-domain', data('ldg1'))), 'Not enough free memory present to meet this request: 100G requested, 60G free');
  t.equal(state('ldg1'), 'inactive');
  t.equal(agent.ldm.domain('ldg1')?.bindings, undefined, 'no bindings left behind');
  await must(request('set-memory', data('ldg1', memory('2G'))));
  t.equal(await refused(request('add-vcpu', data('ldg1', cpu(8, 8)))), 'LDom ldg1 counts its CPUs in whole cores or in strands, not both: use set-vcpu to switch');
});

t.test('fragmented memory: enough in total, but only in small blocks', async (t) => {
  // 30 domains of 2G fill the 60G left; unbinding every other one leaves 15 holes of 2G.
  const names = Array.from({ length: 30 }, (_, i) => `frag${i}`);
  const cmds = names.flatMap((n) => [
    `<cmd><action>add-domain</action>${data(n)}</cmd>`,
    `<cmd><action>add-vcpu</action>${data(n, cpu(1))}</cmd>`,
    `<cmd><action>add-memory</action>${data(n, memory('2G'))}</cmd>`,
    `<cmd><action>bind-domain</action>${data(n)}</cmd>`,
  ]);
  const batch = await admin.request(`<LDM_interface version="1.3">${cmds.join('')}</LDM_interface>`);
  t.ok(ok(batch), 'thirty domains bound in one document of 120 commands');
  const every = names.filter((_, i) => i % 2 === 0);
  const unbind = await admin.request(`<LDM_interface version="1.3">${every.map((n) => `<cmd><action>unbind-domain</action>${data(n)}</cmd>`).join('')}</LDM_interface>`);
  t.ok(ok(unbind));
  await must(request('add-domain', data('big')));
  await must(request('add-vcpu', data('big', cpu(1))));
  await must(request('add-memory', data('big', memory('18G'))));
  t.equal(await refused(request('bind-domain', data('big'))), 'Free memory is too fragmented to bind 18G: it would take more than 8 memory blocks (largest free block 2G)');
  await must(request('set-memory', data('big', memory('16G'))));
  await must(request('bind-domain', data('big')));
  t.equal(agent.ldm.domain('big')!.bindings!.memory.length, 8, '16G bound as eight 2G blocks');
  const ras = agent.ldm.domain('big')!.bindings!.memory.map((b) => b.ra);
  t.same(ras, Array.from({ length: 8 }, (_, i) => 0x8000000 + i * 2 * 2 ** 30), 'contiguous real addresses over scattered physical blocks');
  // Clean up for the next tests.
  await must(request('unbind-domain', data('big')));
  const rm = await admin.request(`<LDM_interface version="1.3"><cmd><action>remove-domain</action><options>-a</options></cmd></LDM_interface>`);
  t.equal(rm.response?.status, 'failure', 'remove-domain -a refuses while some domains are bound');
  t.match(messages(rm).join(), /is bound: stop and unbind it before removing it/);
  const names2 = names.filter((_, i) => i % 2 === 1);
  t.ok(ok(await admin.request(`<LDM_interface version="1.3">${names2.map((n) => `<cmd><action>unbind-domain</action>${data(n)}</cmd>`).join('')}</LDM_interface>`)));
  t.ok(ok(await admin.request(`<LDM_interface version="1.3"><cmd><action>remove-domain</action><options>-a</options></cmd></LDM_interface>`)));
  t.same(agent.ldm.snapshot.domains.map((d) => d.name), ['primary']);
});

t.test('virtual I/O naming what does not exist', async (t) => {
  await must(request('add-domain', data('ldg1')));
  t.equal(
    await refused(request('add-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'd1', vol_name: 'nosuch', service_name: 'primary-vds0' } }))),
    'Volume nosuch@primary-vds0 not found',
  );
  t.equal(
    await refused(request('add-vnet', data('ldg1', { type: 'network', props: { vnet_name: 'n1', service_name: 'primary-vsw9' } }))),
    'Virtual switch primary-vsw9 not found',
  );
  t.equal(await refused(request('add-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'd1', vol_name: 'vol1' } }))), 'disk item is missing its service_name property');
  t.same(agent.ldm.domain('ldg1')!.vdisks, [], 'nothing added');
});

t.test('what the manager refuses on bound and active domains', async (t) => {
  await must(request('add-vcpu', data('ldg1', cpu(2))));
  await must(request('add-memory', data('ldg1', memory('1G'))));
  await must(request('add-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'd1', vol_name: 'vol1', service_name: 'primary-vds0' } })));
  t.equal(await refused(request('start-domain', data('ldg1'))), 'LDom ldg1 is not bound: bind it before starting it');
  await must(request('bind-domain', data('ldg1')));
  t.equal(await refused(request('bind-domain', data('ldg1'))), 'LDom ldg1 is already bound');
  t.equal(await refused(request('remove-domain', data('ldg1'))), 'LDom ldg1 is bound: stop and unbind it before removing it');
  t.equal(await refused(request('add-io', data('ldg1', { type: 'physio_device', props: { name: 'pci@500' } }))), 'Physical I/O device pci@500 is assigned to LDom primary');
  t.equal(await refused(request('remove-vcpu', data('ldg1', cpu(2)))), 'Cannot remove the last virtual CPU of LDom ldg1 while it is bound or active');
  await must(request('start-domain', data('ldg1')));
  t.equal(await refused(request('remove-domain', data('ldg1'))), 'LDom ldg1 is active: stop and unbind it before removing it');
  t.equal(await refused(request('unbind-domain', data('ldg1'))), 'LDom ldg1 is active: stop it before unbinding it');
  t.equal(
    await refused(request('set-domain', data('ldg1', { type: 'ldom_info', props: { hostid: '0x1234' } }))),
    'LDom ldg1 is active: its hostid can only be changed while it is inactive',
  );
  t.equal(await refused(request('stop-domain', data('primary'))), 'The control domain primary cannot be stopped');
  t.equal(await refused(request('remove-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0' } }))), 'vol1@primary-vds0 is in use by LDom ldg1');
  // Allowed while active: more CPUs (dynamic reconfiguration) and the failure policy.
  await must(request('add-vcpu', data('ldg1', cpu(2))));
  t.equal(agent.ldm.domain('ldg1')!.bindings!.strands.length, 4);
  await must(request('set-domain', data('ldg1', { type: 'ldom_info', props: { 'failure-policy': 'reset' } })));
  t.equal(await refused(request('set-domain', data('ldg1', { type: 'ldom_info', props: { 'failure-policy': 'explode' } }))), 'Invalid value "explode" for failure-policy (valid: ignore, panic, reset, stop)');
});

t.test('delayed reconfiguration of the primary', async (t) => {
  const r = await must(request('add-memory', data('primary', memory('1G'))));
  t.match(r.commands[0]!.data[0]!.warning?.messages[0], /delayed reconfiguration operation on the primary domain/);
  t.equal(agent.ldm.flags(agent.ldm.domain('primary')!), '-ndcv-');
  t.match(await refused(request('add-domain', data('ldg2'))), /delayed reconfiguration of the primary domain is pending/);
  t.equal(await refused(request('remove-reconf', data('ldg1'))), 'No delayed reconfiguration is pending on LDom ldg1');
  await must(request('remove-reconf', data('primary')));
  t.equal(agent.ldm.flags(agent.ldm.domain('primary')!), '-n-cv-');
  t.equal(agent.ldm.domain('primary')!.memory, 4 * 2 ** 30, 'the pending change was dropped');
  await must(request('add-domain', data('ldg2')));

  // Giving a bus away from the primary waits for its reboot too, and is undone by remove-reconf.
  const io = await must(request('remove-io', data('primary', { type: 'physio_device', props: { name: 'pci@500' } })));
  t.match(io.commands[0]!.data[0]!.warning?.messages[0], /delayed reconfiguration/);
  t.ok(agent.ldm.domain('primary')!.io.includes('pci@500'), 'the primary keeps the bus until it reboots');
  t.equal(await refused(request('remove-io', data('primary', { type: 'physio_device', props: { name: 'pci@500' } }))), 'Physical I/O device pci@500 is not assigned to LDom primary');
  await must(request('remove-reconf', data('primary')));
  t.ok(agent.ldm.domain('primary')!.io.includes('pci@500'), 'still the primary\'s after the cancel');
  t.equal(agent.ldm.domain('primary')!.delayedReconf, undefined);
  t.equal(await refused(request('add-io', data('ldg2', { type: 'physio_device', props: { name: 'pci@500' } }))), 'Physical I/O device pci@500 is assigned to LDom primary');
});

t.test('a listing with a malformed object fails that object only; the other is listed', async (t) => {
  const r = await admin.request(request('list-domain', [data('primary'), '<data version="3.0"><Envelope><Content/></Envelope></data>']));
  t.equal(r.response?.status, 'failure');
  t.same(r.commands[0]!.data.map((d) => d.response?.messages), [[], ['Content element has no id or ovf:id attribute naming the domain']]);
  t.equal(r.commands[0]!.data[0]!.response?.status, 'success');
  t.equal(r.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.get('state'), 'active', 'the good object is a listing of the primary');
  t.equal(r.commands[0]!.data[1]!.response?.status, 'failure');
  const devices = await must(request('list-devices', data('no-such-domain')));
  t.ok(devices.commands[0]!.data[0]!.envelope!.sections[0]!.items.length > 0, 'list-devices is machine-wide: a Content names nothing');
});
