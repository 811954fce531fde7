// Every check of migration.md failing between two real agents (child processes),
// each as a dry run ("would fail if attempted") and for real ("failed"), with its
// exact reason line and nothing changed on either agent afterwards; then the checks
// that depend on the target's machine file (restarts of the target with another
// one), and -f forcing past a CPU type that differs.
import t, { type Test } from 'tap';
import { migrationMessages as M } from '../agent/messages.ts';
import { migrate, startPair, type AgentProc, type MigrateOptions } from './helpers/cluster.ts';
import { data, memory, request, variable } from './helpers/requests.ts';

const { a, b } = await startPair(t);
const PF0 = '/SYS/MB/NET0/IOVNET.PF0';

// Source alpha: vol1..vol3 and two switches; target beta: only vol1 and vol3, and one switch.
await a.services({ volumes: ['vol1', 'vol2', 'vol3'] });
await a.must(request('add-vswitch', data('primary', { type: 'vsw', props: { service_name: 'primary-vsw1', dev_path: 'net1' } })));
await b.services({ volumes: ['vol1', 'vol3'] });
// A running guest with a small working set; a running guest with an old OS; bound domains
// whose disk or network the target lacks, and one that needs nothing of it; an inactive
// domain with a virtual function.
const small = { 'sim-working-set': '4M', 'sim-fill': 'random' };
await a.domain('ldg1', 'active', { vcpus: 8, memory: '2G', vars: small });
await a.domain('ldg-old', 'active', { vcpus: 8, memory: '1G', disks: [], vnets: [], vars: { ...small, 'sim-os': 's10u8' } });
await a.domain('ldg-disk', 'bound', { vcpus: 1, memory: '1G', disks: [['vdisk0', 'vol2', 'primary-vds0']], vnets: [] });
await a.domain('ldg-net', 'bound', { vcpus: 1, memory: '1G', disks: [], vnets: [['vnet0', 'primary-vsw1']] });
await a.domain('ldg-cold', 'bound', { vcpus: 1, memory: '1G', disks: [], vnets: [] });
await a.must(request('create-vf', data(null, { type: 'physio_device', props: { iov_pf_name: PF0 } })));
await a.domain('ldg-io', 'inactive', { vcpus: 1, memory: '1G', disks: [], vnets: [] });
await a.must(request('add-io', data('ldg-io', { type: 'physio_device', props: { name: `${PF0}.VF0` } })));

/** What must not change: the source domain's state and flags, and each agent's domains. */
async function snapshot(domain: string) {
  const info = await a.listDomain(domain);
  return { source: info && { state: info['state'], flags: info['flags'] }, alpha: await a.domainNames(), beta: await b.domainNames() };
}

/** The migration fails with `reason` as a dry run and for real, and changes nothing either time. */
async function refused(t: Test, domain: string, reason: string, opts: MigrateOptions = {}): Promise<void> {
  const before = await snapshot(domain);
  t.not(before.source?.flags?.[5], 's', 'not marked as a migration source before');
  const dry = await migrate(a, b, domain, { ...opts, options: ['-n', ...(opts.options ?? [])] });
  t.same({ ok: dry.ok, lines: dry.lines }, { ok: false, lines: [reason, M.wouldFail(domain)] }, `dry run: ${dry.all.join(' | ')}`);
  t.same(await snapshot(domain), before, 'the dry run changed nothing');
  const real = await migrate(a, b, domain, opts);
  t.same({ ok: real.ok, lines: real.lines }, { ok: false, lines: [reason, M.failed(domain)] }, `for real: ${real.all.join(' | ')}`);
  t.same(await snapshot(domain), before, 'the failed migration changed nothing: no flag on the source, no domain left on the target');
}

/** A dry run that must pass: success, and nothing changed. */
async function dryRunPasses(t: Test, agent: AgentProc, domain: string, opts: MigrateOptions = {}): Promise<void> {
  const before = await snapshot(domain);
  const dry = await migrate(agent, b, domain, { ...opts, options: ['-n', ...(opts.options ?? [])] });
  t.ok(dry.ok, `the dry run passes: ${dry.all.join(' | ')}`);
  t.same(await snapshot(domain), before, 'and changes nothing');
}

t.test('the source alone: no such domain, the control domain, physical I/O', async (t) => {
  await refused(t, 'nosuch', M.noSuchDomain('nosuch'));
  await refused(t, 'primary', M.controlDomain('primary'));
  await refused(t, 'ldg-io', M.physicalIo('ldg-io', `${PF0}.VF0`));
});

t.test('the guest: at the ok prompt, in the kernel debugger, an OS too old for live migration', async (t) => {
  await a.must(request('set-variable', data('ldg1', variable('sim-state', 'openboot'))));
  await refused(t, 'ldg1', M.runState('ldg1', 'OpenBoot Running'));
  await a.must(request('set-variable', data('ldg1', variable('sim-state', 'kmdb'))));
  await refused(t, 'ldg1', M.runState('ldg1', 'Solaris debugging'));
  await a.must(request('set-variable', data('ldg1', variable('sim-state', 'solaris'))));
  await refused(t, 'ldg-old', M.osTooOld('ldg-old', 's10u8'));
  await dryRunPasses(t, a, 'ldg1');
});

t.test('the name on the target: taken (a rename passes), invalid', async (t) => {
  await b.addDomain('ldg1', { vcpus: 1, memory: '1G', disks: [], vnets: [] });
  await refused(t, 'ldg1', M.nameTaken('ldg1', 'beta'));
  await dryRunPasses(t, a, 'ldg1', { as: 'ldg1-b' });
  await b.must(request('remove-domain', data('ldg1')));
  await refused(t, 'ldg1', M.invalidName('9lives'), { as: '9lives' });
});

t.test('identity: the guest\'s host ID in use on the target', async (t) => {
  const hostid = (await a.listDomain('ldg1'))!['hostid']!;
  await b.must(request('add-domain', data('twin', { type: 'ldom_info', props: { hostid } })));
  await refused(t, 'ldg1', M.hostidInUse(hostid, 'ldg1', 'twin', 'beta'));
  await b.must(request('remove-domain', data('twin')));
});

t.test('CPUs and memory: not enough free whole cores, strands, memory on the target', async (t) => {
  // The primary holds core 0: 56 strands bound on the other seven cores leave no free core, no free strand.
  await b.domain('hog', 'bound', { vcpus: 56, memory: '1G', disks: [], vnets: [] });
  await refused(t, 'ldg1', M.notEnoughCores('ldg1', 'beta', 8, 1, 0));
  // A bound domain needs strands, not whole cores (checked before its disk, which beta lacks too).
  await refused(t, 'ldg-disk', M.notEnoughCpus('ldg-disk', 'beta', 1, 0));
  await b.must(request('unbind-domain', data('hog')));
  await b.must(request('remove-domain', data('hog')));
  // 64G - 4G for the primary - 59G leaves 1G; ldg1 has 2G.
  await b.domain('hog', 'bound', { vcpus: 1, memory: '59G', disks: [], vnets: [] });
  await refused(t, 'ldg1', M.notEnoughMemory('ldg1', 'beta', '2G', '1G'));
  await b.must(request('unbind-domain', data('hog')));
  await b.must(request('remove-domain', data('hog')));
  await dryRunPasses(t, a, 'ldg1');
});

t.test('virtual I/O: a missing disk back end, its options differing, a missing switch, no console port', async (t) => {
  await refused(t, 'ldg-disk', M.noVolume('vol2', 'primary-vds0', 'vdisk0', 'ldg-disk', 'beta'));
  await refused(t, 'ldg-net', M.noVsw('primary-vsw1', 'vnet0', 'ldg-net', 'beta'));
  const volume = (opts?: string) => data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/ldoms/vol1', ...(opts ? { vol_opts: opts } : {}) } });
  await b.must(request('remove-vdiskserverdevice', volume()));
  await b.must(request('add-vdiskserverdevice', volume('ro')));
  await refused(t, 'ldg1', M.volumeOptions('vol1', 'primary-vds0', '', 'beta', 'ro'));
  await b.must(request('remove-vdiskserverdevice', volume()));
  await b.must(request('add-vdiskserverdevice', volume()));
  const vcc = data('primary', { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } });
  await b.must(request('remove-vconscon', vcc));
  await refused(t, 'ldg1', M.noConsole('ldg1', 'beta'));
  await b.must(request('add-vconscon', vcc));
  await dryRunPasses(t, a, 'ldg1');
});

t.test('a delayed reconfiguration pending on the target, then on the source', async (t) => {
  await b.must(request('add-memory', data('primary', memory('1G'))));
  t.equal((await b.listDomain('primary'))!['flags']![2], 'd', 'the target\'s primary waits for its reboot');
  await refused(t, 'ldg1', M.delayedReconf('beta', 'target'));
  await b.must(request('cancel-operation', data('primary'), 'reconf'));
  await a.must(request('add-memory', data('primary', memory('1G'))));
  await refused(t, 'ldg1', M.delayedReconf('alpha', 'source'));
  await a.must(request('cancel-operation', data('primary'), 'reconf'));
  await dryRunPasses(t, a, 'ldg1');
});

t.test('the target\'s machine: firmware, manager version, domain limit, elastic power policy, CPU type (and -f)', async (t) => {
  await b.restart({ firmware: '6.3.1' });
  await refused(t, 'ldg1', M.firmware('beta', 'target', '6.3.1', '7.0'));
  await b.restart({ managerVersion: '1.0' });
  await refused(t, 'ldg1', M.managerVersion('alpha', '2.1', 'beta', '1.0'));
  await b.restart({ maxDomains: 1 });
  await refused(t, 'ldg-cold', M.tooManyDomains('beta', 1));
  await b.restart({ powerPolicy: 'elastic' });
  await refused(t, 'ldg1', M.elastic('beta', 'target'));
  await dryRunPasses(t, a, 'ldg-cold'); // the power policy matters to live migrations only
  await b.restart({ cpu: { type: 'SPARC-T5', frequencyMHz: 3600 } });
  await refused(t, 'ldg1', M.cpuType('ldg1', 'alpha', 'SPARC-T4 at 2848 MHz', 'beta', 'SPARC-T5 at 3600 MHz'));
  await dryRunPasses(t, a, 'ldg1', { options: ['-f'] });
  const forced = await migrate(a, b, 'ldg1', { options: ['-f'] });
  t.ok(forced.ok, `-f migrates past the CPU type: ${forced.all.join(' | ')}`);
  t.equal(await a.listDomain('ldg1'), undefined, 'gone from the source');
  t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'running on the target');
});
