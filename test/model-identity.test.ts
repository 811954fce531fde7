// Distinct identities per machine (issue 8 prerequisite): automatic MAC
// addresses and domain host ids start at a place derived from the machine's
// host id, so two agents on different machines do not hand out the same ones
// (a domain migrated between them would collide); the same machine file gives
// the same sequence, the host name plays no part, an older saved state goes on
// with its own counters, and the ranges wrap round without duplicates.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guests } from '../agent/manager/guests.ts';
import { Ldm } from '../agent/model/ldm.ts';
import { AUTO_HOSTID_COUNT, AUTO_MAC_COUNT } from '../agent/model/limits.ts';
import { DEFAULT_MACHINE_FILE, loadMachine, machineFromJson, type MachineSpec } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { LdmState } from '../agent/model/types.ts';

const root = mkdtempSync(join(tmpdir(), 'ldm-identity-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => mkdtempSync(join(root, `state-${++dirs}-`));
const open = (dir: string, m: MachineSpec) => Ldm.open(m, new StateStore(dir), () => {}, new Guests());
const machine = (hostid: string, hostname = 'host-a') => machineFromJson({ hostid, hostname }, `machine ${hostid}`);
const fileOf = (dir: string) => join(dir, 'domains.json');
const readState = (dir: string) => JSON.parse(readFileSync(fileOf(dir), 'utf8')) as LdmState;
const writeState = (dir: string, s: LdmState) => writeFileSync(fileOf(dir), JSON.stringify(s, null, 1) + '\n', { mode: 0o600 });

/** The same configuration on any machine: a virtual switch, domains with vnets, a vnet added later. */
async function build(m: MachineSpec) {
  const ldm = await open(freshDir(), m);
  await ldm.addVsw('primary-vsw0', 'primary', {});
  for (let i = 1; i <= 6; i++) await ldm.addDomain(`ldg${i}`, {}, { vnets: [{ name: 'vnet0', service: 'primary-vsw0' }, { name: 'vnet1', service: 'primary-vsw0' }] });
  await ldm.addVnet('primary', 'vnet9', 'primary-vsw0', {});
  return identities(ldm.snapshot);
}

function identities(s: Readonly<LdmState>) {
  return {
    macs: [...s.domains.flatMap((d) => [d.mac, ...d.vnets.map((n) => n.mac)]), ...s.vsw.map((w) => w.mac)],
    hostids: s.domains.filter((d) => d.name !== 'primary').map((d) => d.hostid),
    uuids: s.domains.map((d) => d.uuid),
  };
}

const common = (a: string[], b: string[]) => a.filter((x) => b.includes(x));
const macValue = (mac: string) => Number.parseInt(mac.replaceAll(':', ''), 16);

t.test('two machines with different host ids: no MAC address, host id or UUID in common', async (t) => {
  // Neighbouring host ids too: the start is a hash, not the host id's low bits.
  for (const [a, b] of [['0x84f8a2c3', '0x84f8a2c4'], ['0x84f8a2c3', '0x8400beef'], ['0x80000001', '0x80000002']] as const) {
    const one = await build(machine(a));
    const two = await build(machine(b));
    t.same(common(one.macs, two.macs), [], `${a} / ${b}: MAC addresses`);
    t.same(common(one.hostids, two.hostids), [], `${a} / ${b}: host ids`);
    t.same(common(one.uuids, two.uuids), [], `${a} / ${b}: UUIDs`);
    for (const ids of [one, two]) {
      t.equal(new Set(ids.macs).size, ids.macs.length, 'MAC addresses unique on the machine');
      t.equal(new Set(ids.hostids).size, ids.hostids.length, 'host ids unique on the machine');
      t.ok(ids.macs.every((mac) => macValue(mac) >= 0x00144ff80000 && macValue(mac) <= 0x00144ffbffff), "MAC addresses within Oracle's automatic range");
      t.ok(ids.hostids.every((h) => /^0x84f[89ab][0-9a-f]{4}$/.test(h)), 'host ids within 0x84f80000-0x84fbffff');
    }
  }
});

t.test('the same machine file gives the same sequence; the host name alone changes nothing', async (t) => {
  const file = join(root, 'machine.json');
  writeFileSync(file, JSON.stringify({ ...DEFAULT_MACHINE_FILE, hostid: '0x84f8a2c3' }));
  const first = await build(loadMachine(file, 't4-a'));
  const again = await build(loadMachine(file, 't4-a'));
  const renamed = await build(loadMachine(file, 'another-name'));
  const spelled = await build(machine('84F8A2C3', 'a-third-name'));
  t.same(again, first, 'the same machine file twice');
  t.same(renamed, first, '--hostname alone');
  t.same(spelled, first, 'the same host id value spelled differently');
  const other = await build(machine('0x84f8a2c5'));
  t.same(common(other.macs, first.macs), [], 'while another host id gives other MAC addresses');
});

t.test('a machine file host id must be a 32-bit hexadecimal number', async (t) => {
  for (const bad of ['0x1234567890', 'host-a', 42]) {
    t.throws(() => machineFromJson({ hostid: bad }, 'm.json'), { message: /m\.json: hostid must be a 32-bit hexadecimal number/ }, String(bad));
  }
});

t.test('an older saved state goes on with its own counters', async (t) => {
  const dir = freshDir();
  await open(dir, machine('0x84f8a2c3'));
  const s = readState(dir);
  // Counters as a state saved before the start was derived holds them (both started at 1).
  s.nextMac = 7;
  s.nextHostid = 7;
  writeState(dir, s);
  const ldm = await open(dir, machine('0x84f8a2c3'));
  await ldm.addDomain('ldg1');
  const d = ldm.domain('ldg1')!;
  t.same([d.mac, d.hostid], ['00:14:4f:f8:00:07', '0x84f81007'], 'the next numbers after the saved counters, as before');
});

t.test('both ranges wrap round once, skipping what is in use', async (t) => {
  const dir = freshDir();
  const ldm0 = await open(dir, machine('0x84f8a2c3'));
  await ldm0.addDomain('first', { mac: '00:14:4f:f8:00:00', hostid: '0x84f80000' });
  const s = readState(dir);
  // The counters at the last number of each range (host ids are numbered from the counter plus 0x1000).
  s.nextMac = AUTO_MAC_COUNT - 1;
  s.nextHostid = AUTO_HOSTID_COUNT - 1 - 0x1000;
  writeState(dir, s);
  const ldm = await open(dir, machine('0x84f8a2c3'));
  await ldm.addDomain('last');
  await ldm.addDomain('wrapped');
  t.same([ldm.domain('last')!.mac, ldm.domain('last')!.hostid], ['00:14:4f:fb:ff:ff', '0x84fbffff'], 'the last of each range');
  t.same([ldm.domain('wrapped')!.mac, ldm.domain('wrapped')!.hostid], ['00:14:4f:f8:00:01', '0x84f80001'], 'then round to the start, the first numbers being in use');
  t.ok(readState(dir).nextMac <= AUTO_MAC_COUNT, 'the saved MAC counter stays within the range');
});
