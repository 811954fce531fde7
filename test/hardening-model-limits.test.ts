// Bounded work in the model (issue 13, item 7): the automatic MAC range running
// out is a refusal, not an endless loop; add-domain is linear and refused past
// the machine's domain limit before any work; variables, devices per domain and
// the saved state have sizes, each refusal naming its limit.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guests } from '../agent/manager/guests.ts';
import { Ldm } from '../agent/model/ldm.ts';
import { loadMachine, machineFromJson, type MachineSpec } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { LdmState } from '../agent/model/types.ts';
import { AUTO_MAC_COUNT } from '../agent/model/limits.ts';
import { startTestAgent } from './helpers/agent.ts';
import { data, request, variable } from './helpers/requests.ts';
import { adminSession, messages, ok } from './helpers/session.ts';

const root = mkdtempSync(join(tmpdir(), 'ldm-hardening-limits-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
/** One certificate directory for every agent of this file (key generation is the slow part of a start). */
const certs = join(root, 'certs');
let dirs = 0;
const freshDir = () => {
  const dir = join(root, `state-${++dirs}`);
  mkdirSync(dir);
  return dir;
};
const machine = loadMachine(undefined, 'test-host');
const open = (dir: string, m: MachineSpec = machine) => Ldm.open(m, new StateStore(dir), () => {}, new Guests());
const fileOf = (dir: string) => join(dir, 'domains.json');
const readState = (dir: string) => JSON.parse(readFileSync(fileOf(dir), 'utf8')) as LdmState;
const writeState = (dir: string, s: LdmState) => writeFileSync(fileOf(dir), JSON.stringify(s, null, 1) + '\n', { mode: 0o600 });
/** Automatic MAC address number n (Oracle's range from 00:14:4f:f8:00:00, as the model numbers it). */
const autoMac = (n: number) => (0x00144ff80000 + n).toString(16).padStart(12, '0').match(/../g)!.join(':');

t.test('all 262,144 automatic MAC addresses in use: add-domain, add-vnet and add-vswitch are refused, not looped on', async (t) => {
  const dir = freshDir();
  const ldm = await open(dir);
  await ldm.addVsw('vsw0', 'primary', { mac: '00:14:4f:fc:00:00' });
  await ldm.addDomain('full');
  const [vf] = await ldm.createVf('/SYS/MB/NET0/IOVNET.PF0', 1, []);
  // The used set filled by a crafted state: a few vnets of one domain, and a VF's
  // alternate addresses holding the rest of the range (the smallest way to save
  // them: the file stays under the state limit, so later changes can be saved).
  const s = readState(dir);
  const vfConfig = s.vfs!.find((v) => v.name === vf)!;
  const taken = new Set([s.domains[0]!.mac, vfConfig.mac]);
  const full = s.domains.find((d) => d.name === 'full')!;
  const rest = Array.from({ length: AUTO_MAC_COUNT }, (_, n) => autoMac(n)).filter((mac) => !taken.has(mac));
  full.mac = rest[0]!;
  full.vnets = rest.slice(1, 9).map((mac, i) => ({ name: `v${i}`, service: 'vsw0', mac, id: i }));
  vfConfig.altMacs = rest.slice(9);
  writeState(dir, s);

  const reopened = await open(dir);
  const noneFree =
    'All 262144 automatic MAC addresses (00:14:4f:f8:00:00 to 00:14:4f:fb:ff:ff) are in use: give a MAC address explicitly (mac-addr) or remove unused vnets, vswitches or domains';
  await t.rejects(reopened.addDomain('one-more'), { message: noneFree }, 'add-domain');
  await t.rejects(reopened.addVnet('primary', 'vnet-more', 'vsw0', {}), { message: noneFree }, 'add-vnet');
  await t.rejects(reopened.addVsw('vsw-more', 'primary', {}), { message: noneFree }, 'add-vswitch');
  t.equal(reopened.domain('one-more'), undefined, 'nothing added');

  await reopened.addDomain('given', { mac: '00:14:4f:fc:00:01' });
  t.equal(reopened.domain('given')!.mac, '00:14:4f:fc:00:01', 'a MAC address given explicitly still works');
  const freed = full.vnets[4]!;
  await reopened.removeVnet('full', freed.name);
  await reopened.addDomain('reuses');
  t.equal(reopened.domain('reuses')!.mac, freed.mac, 'a freed automatic address is found again (the search goes round the range)');
  t.ok(readState(dir).nextMac <= AUTO_MAC_COUNT, 'the saved counter stays within the range');
});

t.test('add-domain: refused past the machine\'s limit before any work, linear up to it', async (t) => {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']], certs });
  const admin = await adminSession(agent);
  t.teardown(() => admin.close());
  const naming = (names: string[]) =>
    request('add-domain', `<data version="3.0"><Envelope><References/>${names.map((n) => `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${n}"/>`).join('')}</Envelope></data>`);
  const names = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

  let started = performance.now();
  const many = await admin.request(naming(names(1_000, 'many')));
  const refusedIn = performance.now() - started;
  t.equal(many.response?.status, 'failure', 'add-domain naming 1,000 domains: refused');
  t.same(messages(many), ['This machine allows at most 128 domains (the primary included): 1001 would exist after this request']);
  t.equal(agent.ldm.snapshot.domains.length, 1, 'none of them added');
  t.comment(`add-domain naming 1,000 domains refused in ${refusedIn.toFixed(0)} ms`);

  started = performance.now();
  const max = await admin.request(naming(names(127, 'ldg')));
  const elapsed = performance.now() - started;
  t.ok(ok(max), 'the 127 domains the limit leaves beside the primary: added in one request');
  t.equal(agent.ldm.snapshot.domains.length, 128);
  t.equal(new Set(agent.ldm.snapshot.domains.map((d) => d.mac)).size, 128, 'each with its own MAC address');
  t.equal(new Set(agent.ldm.snapshot.domains.map((d) => d.hostid)).size, 128, 'and host id');
  t.comment(`add-domain of the maximum (127 domains) in one request, round trip over TLS: ${elapsed.toFixed(0)} ms`);

  const one = await admin.request(request('add-domain', data('one-more')));
  t.same(messages(one), ['This machine allows at most 128 domains (the primary included): 129 would exist after this request']);
  t.ok(ok(await admin.request(request('remove-domain', data('ldg0')))));
  t.ok(ok(await admin.request(request('add-domain', data('one-more')))), 'room again once one is removed');
});

t.test("the machine file's maxDomains: raised up to 1024, and linear there", async (t) => {
  t.throws(() => machineFromJson({ maxDomains: 5000 }, 'big.json'), { message: 'machine description big.json: maxDomains (5000) exceeds 1024' });
  t.throws(() => machineFromJson({ maxDomains: 0 }, 'zero.json'), { message: /maxDomains must be a positive integer/ });
  t.equal(machineFromJson({}, 'built-in').maxDomains, 128, 'the built-in T4-1 allows 128 (Oracle\'s figure for the T4)');

  const large = machineFromJson({ hostname: 'test-host', maxDomains: 1024 }, 'large.json');
  const ldm = await open(freshDir(), large);
  const started = performance.now();
  await ldm.addDomains(Array.from({ length: 1023 }, (_, i) => ({ name: `d${i}` })));
  const elapsed = performance.now() - started;
  t.equal(ldm.snapshot.domains.length, 1024);
  t.comment(`add-domain of 1023 domains in one change (maxDomains 1024), model and save: ${elapsed.toFixed(0)} ms`);
  // 20,000 domains took 38 s of blocked loop at d4927ef; at the limit it is a fraction of that.
  t.ok(elapsed < 5_000, `1023 domains in ${elapsed.toFixed(0)} ms`);
  await t.rejects(ldm.addDomain('d-more'), { message: 'This machine allows at most 1024 domains (the primary included): 1025 would exist after this request' });
});

t.test('variables: name, value and count per domain are bounded, over the XML interface', async (t) => {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']], certs });
  const admin = await adminSession(agent);
  t.teardown(() => admin.close());
  t.ok(ok(await admin.request(request('add-domain', data('ldg1')))));
  const refusal = async (text: string) => {
    const r = await admin.request(text);
    t.equal(r.response?.status, 'failure');
    return messages(r).join('; ');
  };

  // The probe's 3.9 MB value, copied into every SP configuration, made a 523 MB state file.
  t.equal(
    await refusal(request('add-variable', data('ldg1', variable('blob', 'x'.repeat(3_900_000))))),
    'The value of variable blob is 3900000 bytes long: the limit is 4096 bytes',
  );
  t.ok(ok(await admin.request(request('add-variable', data('ldg1', variable('nvramrc', 'x'.repeat(4096)))))), 'a 4 KiB value is accepted');
  t.equal(
    await refusal(request('set-variable', data('ldg1', variable('nvramrc', 'é'.repeat(2049))))),
    'The value of variable nvramrc is 4098 bytes long: the limit is 4096 bytes',
    'counted in UTF-8 bytes, as saved',
  );
  t.equal(
    await refusal(request('add-variable', data('ldg1', variable('n'.repeat(129), '1')))),
    `Variable name ${'n'.repeat(40)}... (129 characters) is 129 bytes long: the limit is 128 bytes`,
  );
  const vars = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => variable(`${prefix}${i}`, String(i)));
  t.ok(ok(await admin.request(request('add-variable', data('ldg1', ...vars(255, 'v'))))), '256 variables in all');
  t.equal(await refusal(request('add-variable', data('ldg1', variable('one-more', '1')))), 'LDom ldg1 would have more than 256 variables: the limit is 256');
  t.ok(ok(await admin.request(request('set-variable', data('ldg1', variable('v0', 'changed'))))), 'changing one is still possible');
  t.equal(
    await refusal(request('add-domain', data('ldg2', ...vars(300, 'w')))),
    'LDom ldg2 would have more than 256 variables: the limit is 256',
    'add-domain with variables: the same limit',
  );
  t.equal(agent.ldm.domain('ldg2'), undefined);
  t.equal(agent.ldm.domain('ldg1')!.variables.length, 256);
});

t.test('virtual disks and networks per domain are bounded, each request stopping at the limit', async (t) => {
  const ldm = await open(freshDir());
  await ldm.addVds('vds0', 'primary');
  await ldm.addVolume('vds0', 'vol0', '/dev/zvol/dsk/v0', []);
  await ldm.addVsw('vsw0', 'primary', {});
  const disks = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `d${i}`, volume: 'vol0', service: 'vds0' }));
  const nets = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `n${i}`, service: 'vsw0' }));
  // At d4927ef 5,000 of either in one add-domain took 11 and 17 s (a scan per device).
  await t.rejects(ldm.addDomain('disky', {}, { vdisks: disks(5000) }), { message: 'LDom disky would have more than 256 vdisks: the limit is 256 per domain' });
  await t.rejects(ldm.addDomain('netty', {}, { vnets: nets(5000) }), { message: 'LDom netty would have more than 256 vnets: the limit is 256 per domain' });
  await ldm.addDomain('ldg1', {}, { vdisks: disks(256), vnets: nets(256) });
  await t.rejects(ldm.addVdisk('ldg1', 'one-more', 'vol0', 'vds0'), { message: 'LDom ldg1 would have more than 256 vdisks: the limit is 256 per domain' });
  await t.rejects(ldm.addVnet('ldg1', 'one-more', 'vsw0', {}), { message: 'LDom ldg1 would have more than 256 vnets: the limit is 256 per domain' });
});

t.test('the saved state is bounded: a change that would pass 8 MiB is refused, naming the limit', async (t) => {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']], certs });
  const admin = await adminSession(agent);
  t.teardown(() => admin.close());
  t.ok(ok(await admin.request(request('add-domain', data('ldg1')))));
  const big = Array.from({ length: 256 }, (_, i) => variable(`v${i}`, 'x'.repeat(4096)));
  t.ok(ok(await admin.request(request('add-variable', data('ldg1', ...big)))), 'a domain with 1 MiB of variables');
  // Each SP configuration copies the domains: the file grows by about 1 MiB each time.
  let refusal: string | undefined;
  let saved = 0;
  for (let i = 0; i < 16 && refusal === undefined; i++) {
    const r = await admin.request(request('add-spconfig', data(null, { type: 'spconfig', props: { spconfig_name: `cfg${i}` } })));
    if (ok(r)) saved++;
    else refusal = messages(r).join('; ');
  }
  t.match(refusal, /^The change was not made: the domain database would grow to \d+ bytes, over the limit of 8388608 bytes; remove SP configurations, variables or domains first$/);
  t.ok(saved >= 5 && saved < 8, `${saved} SP configurations fit`);
  const size = readFileSync(fileOf(join(agent.dir, 'var'))).length;
  t.ok(size <= 8 * 2 ** 20, `domains.json stays under 8 MiB (${size} bytes)`);
  t.ok(ok(await admin.request(request('remove-spconfig', data(null, { type: 'spconfig', props: { spconfig_name: 'cfg0' } })))), 'removing one is accepted');
});

t.test('a state file already over the limit (an earlier version wrote it) loads, and may only shrink', async (t) => {
  const dir = freshDir();
  await open(dir);
  const s = readState(dir);
  s.spconfigs.push({ name: 'huge', saved: JSON.stringify([{ note: 'x'.repeat(9 * 2 ** 20) }]) });
  writeState(dir, s);
  const ldm = await open(dir);
  await t.rejects(ldm.setVariables('primary', 'add', [['a', '1']]), { message: /the domain database would grow to \d+ bytes, over the limit of 8388608 bytes/ }, 'a change that keeps it over the limit and larger: refused');
  await ldm.removeSpconfig('huge');
  t.ok(readFileSync(fileOf(dir)).length < 8 * 2 ** 20, 'removing the SP configuration brought it under the limit');
  await ldm.setVariables('primary', 'add', [['a', '1']]);
  t.same(ldm.domain('primary')!.variables, [['a', '1']], 'and changes are saved again');
});
