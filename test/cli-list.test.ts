// `ldm` listings (issue 9): the real executable against real agents, on the local socket
// and over TCP, compared with text laid out as ldm-cli-outputs.md's samples show it
// (sections 1-4, 6): the table's printf layout, the long form, the parseable forms,
// -o status during and after a migration, list-constraints -x fed back to the agent.
import t, { type Test } from 'tap';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uptimeText } from '../agent/cli/ldm/format.ts';
import { ADMIN, contentOf, itemsOf, migrate, startAgentProc, startPair, waitFor, type AgentProc } from './helpers/cluster.ts';
import { runLdm, runLdmAll, type LdmRun } from './helpers/ldm.ts';
import { data, request } from './helpers/requests.ts';

const local = (agent: AgentProc) => ({ env: { LDM_AGENT_STATE: agent.state } });
const lines = (...l: string[]) => l.join('\n') + '\n';
/**
 * The output with its uptimes blanked: they count seconds since a guest booted and
 * change from run to run (the table's last column, `uptime=` of -p). Their form is
 * checked on its own (uptimeText, and 'uptimes of running domains' below).
 */
const steady = (text: string) =>
  text
    .replace(/ +\d+[smhd](?: \d+[smhd])*$/gm, '')
    .replace(/\|uptime=\d+/g, '|uptime=');
const exact = (t: Test, r: LdmRun, stdout: string, what: string) => {
  t.equal(r.stderr, '', `${what}: nothing on stderr`);
  t.equal(steady(r.stdout), stdout, what);
  t.equal(r.status, 0, `${what}: exit 0`);
};

t.test('uptimes as the samples print them (1.1): largest unit first, zero fields left out', async (t) => {
  t.equal(uptimeText(String(45 * 86400 + 8 * 3600 + 6 * 60 + 59)), '45d 8h 6m');
  t.equal(uptimeText(String(3 * 86400 + 55 * 60)), '3d 55m');
  t.equal(uptimeText(String(2 * 3600 + 16 * 60 + 5)), '2h 16m');
  t.equal(uptimeText('540'), '9m');
  t.equal(uptimeText(''), '');
});

t.test('one agent: every listing, on the local socket and over TCP', async (t) => {
  const a = await startAgentProc(t, 'alpha');
  await a.services();
  await a.domain('ldg1', 'active', { vars: { 'auto-boot?': 'false' } });
  await a.domain('ldg2', 'bound');
  await a.must(request('add-domain', data('ldg3')));
  // A name longer than NAME's 16 columns pushes the rest of its row right (1.3).
  await a.domain('DR-PRD02-CBSRPT01', 'bound', { vcpus: 16 });
  const info = async (name: string) => (await a.listDomain(name))!;
  const [p, l1, l2, l3] = [await info('primary'), await info('ldg1'), await info('ldg2'), await info('ldg3')];
  const vnetMac = itemsOf(await a.constraints('ldg1'), 'network')[0]!.rasd.get('Address')!;
  const env = local(a);
  // Everything that only reads, before anything changes: a few runs at a time.
  const r = await runLdmAll(
    {
      list: ['list'],
      lsdom: ['ls-dom', 'ldg1'],
      lsp: ['ls', '-p'],
      l3: ['ls', '-l', 'ldg3'],
      lp3: ['ls', '-l', '-p', 'ldg3'],
      l1: ['ls', '-l', 'ldg1'],
      b1: ['list-bindings', 'ldg1'],
      two: ['ls', '-l', 'ldg3', 'ldg1'],
      lp: ['ls-bindings', '-p', 'ldg1'],
      pl: ['ls', '-l', '-p', 'primary'],
      omem: ['ls', '-o', 'memory', 'ldg2'],
      onet: ['ls', '-o', 'net', '-p', 'ldg1'],
      dev: ['list-devices', 'mem'],
      devA: ['ls-devices', '-a', '-p', 'memory'],
      cpu: ['list-devices', 'cpu', 'core'],
      svcp: ['list-services', '-p'],
      svc: ['list-services'],
      var1: ['list-variable', 'auto-boot?', 'ldg1'],
      spc: ['list-spconfig'],
      missing: ['ls', 'nosuch', 'ldg3'],
      missingP: ['ls', '-p', 'nosuch'],
      unset: ['list-variable', 'boot-device', 'ldg1'],
      cp: ['list-constraints', '-p', 'ldg2'],
      ct: ['list-constraints', 'ldg2'],
      x: ['list-constraints', '-x', 'ldg2'],
    },
    env,
  );

  const table = lines(
    'NAME             STATE      FLAGS   CONS    VCPU  MEMORY   UTIL  UPTIME',
    'primary          active     -n-cv-  UART    8     4G',
    'ldg1             active     -n----  5000    8     1G',
    'ldg2             bound      ------  5001    8     1G',
    'ldg3             inactive   ------',
    'DR-PRD02-CBSRPT01 bound      ------  5002    16    1G',
  );
  exact(t, r.list, table, 'ldm list');
  // Uptimes of running domains: shown for the active ones only, in the samples' form.
  t.match(r.list.stdout, /^primary .* \d+[smhd](?: \d+[smhd])*$/m, 'the control domain has an uptime');
  t.match(r.list.stdout, /^ldg1 .* \d+[smhd](?: \d+[smhd])*$/m, 'a running guest has an uptime');
  t.match(r.lsp.stdout, /\|name=ldg1\|.*\|uptime=\d+$/m, '-p gives it in seconds');
  t.match(r.lsp.stdout, /\|name=ldg2\|.*\|uptime=$/m, 'a bound domain has none');
  exact(t, r.lsdom, lines(table.split('\n')[0]!, table.split('\n')[2]!), 'ldm ls-dom ldg1');

  exact(
    t,
    r.lsp,
    lines(
      'VERSION 1.6',
      'DOMAIN|name=primary|state=active|flags=-n-cv-|cons=UART|ncpu=8|mem=4294967296|util=|uptime=',
      'DOMAIN|name=ldg1|state=active|flags=-n----|cons=5000|ncpu=8|mem=1073741824|util=|uptime=',
      'DOMAIN|name=ldg2|state=bound|flags=------|cons=5001|ncpu=8|mem=1073741824|util=|uptime=',
      'DOMAIN|name=ldg3|state=inactive|flags=------|cons=|ncpu=|mem=|util=|uptime=',
      'DOMAIN|name=DR-PRD02-CBSRPT01|state=bound|flags=------|cons=5002|ncpu=16|mem=1073741824|util=|uptime=',
    ),
    'ldm ls -p',
  );

  // 1.2, verbatim in the 3.5 guide: a domain just added.
  exact(
    t,
    r.l3,
    lines('NAME             STATE      FLAGS   CONS    VCPU  MEMORY   UTIL  UPTIME', 'ldg3             inactive   ------', '', 'UUID', `    ${l3['uuid']}`, ''),
    'ldm ls -l ldg3',
  );
  exact(t, r.lp3, lines('VERSION 1.6', 'DOMAIN|name=ldg3|state=inactive|flags=|cons=|ncpu=|mem=|util=|uptime=', `UUID|uuid=${l3['uuid']}`), 'ldm ls -l -p ldg3');

  // Section 2: the long form of a running guest, sections in the 3.x order, bodies indented four.
  const ldg1Long = lines(
    'NAME             STATE      FLAGS   CONS    VCPU  MEMORY   UTIL  UPTIME',
    'ldg1             active     -n----  5000    8     1G',
    '',
    'SOFTSTATE',
    'OpenBoot Running',
    '',
    'UUID',
    `    ${l1['uuid']}`,
    '',
    'MAC',
    `    ${l1['mac-addr'] ?? (await contentMac(a, 'ldg1'))}`,
    '',
    'HOSTID',
    `    ${l1['hostid']}`,
    '',
    'CONTROL',
    '    failure-policy=ignore',
    '    extended-mapin-space=off',
    '    cpu-arch=native',
    '    rc-add-policy=',
    '    shutdown-group=15',
    '    perf-counters=htstrand',
    '    boot-policy=warning',
    '    max-cores=unlimited',
    '',
    'DEPENDENCY',
    '    master=',
    '',
    'CORE',
    '    CID    CPUSET',
    '    1      (8, 9, 10, 11, 12, 13, 14, 15)',
    '',
    'VCPU',
    '    VID    PID    CID    UTIL STRAND',
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((v) => `    ${String(v).padEnd(7)}${String(v + 8).padEnd(7)}1             100%`),
    '',
    'MEMORY',
    '    RA               PA               SIZE',
    '    0x8000000        0x108000000      1G',
    '',
    'VARIABLES',
    '    auto-boot?=false',
    '',
    'NETWORK',
    '    NAME         SERVICE                     ID   DEVICE     MAC               MODE   PVID VID                  MTU   MAXBW      LINKPROP',
    `    vnet0        primary-vsw0@primary        0    network@0  ${vnetMac}                                  1500`,
    '',
    'DISK',
    '    NAME             VOLUME                      TOUT ID   DEVICE  SERVER         MPGROUP',
    '    vdisk0           vol1@primary-vds0                0    disk@0  primary',
    '',
    'VCONS',
    '    NAME             SERVICE                     PORT   LOGGING',
    '    ldg1             primary-vcc0@primary        5000',
    '',
  );
  exact(t, r.l1, ldg1Long, 'ldm ls -l ldg1');
  exact(t, r.b1, ldg1Long, 'ldm list-bindings ldg1 (the same form)');

  // Two domains: each with its header, parted by a rule.
  const two = r.two;
  t.equal(steady(two.stdout), lines('NAME             STATE      FLAGS   CONS    VCPU  MEMORY   UTIL  UPTIME', 'ldg3             inactive   ------', '', 'UUID', `    ${l3['uuid']}`, '', '-'.repeat(78)) + ldg1Long, 'ldm ls -l ldg3 ldg1');

  // 3.3: -l -p spells the flags out and adds the softstate; the records public parsers read (3.4).
  const lp = r.lp;
  t.equal(lp.status, 0);
  const lpLines = steady(lp.stdout).split('\n');
  t.equal(lpLines[0], 'VERSION 1.6');
  t.equal(lpLines[1], 'DOMAIN|name=ldg1|state=active|flags=normal|cons=5000|ncpu=8|mem=1073741824|util=|uptime=|softstate=OpenBoot Running');
  t.equal(lpLines[2], `UUID|uuid=${l1['uuid']}`);
  t.equal(lp.stdout.match(/^VCPU\n((?:\|.*\n)*)/m)?.[1], [0, 1, 2, 3, 4, 5, 6, 7].map((v) => `|vid=${v}|pid=${v + 8}|cid=1|util=|strand=100\n`).join(''), 'VCPU records');
  t.match(lp.stdout, /^MEMORY\n\|ra=0x8000000\|pa=0x108000000\|size=1073741824\n/m);
  t.match(lp.stdout, /^VARIABLES\n\|auto-boot\?=false\n/m);
  t.match(lp.stdout, new RegExp(`^VNET\\|name=vnet0\\|dev=network@0\\|service=primary-vsw0@primary\\|mac-addr=${vnetMac}\\|`, 'm'));
  t.match(lp.stdout, /^VDISK\|name=vdisk0\|vol=vol1@primary-vds0\|timeout=\|dev=disk@0\|server=primary\|mpgroup=\|id=0$/m);
  const pl = r.pl;
  t.match(steady(pl.stdout), /^DOMAIN\|name=primary\|state=active\|flags=normal,control,vio-service\|cons=UART\|ncpu=8\|mem=4294967296\|util=\|uptime=\|softstate=Solaris running$/m);
  t.match(pl.stdout, /^IO\n\|dev=pci@400\|alias=pci_0\n\|dev=pci@500\|alias=pci_1\n/m);

  // 6.4: -o memory; -o net -p gives VNET records (3.4).
  exact(t, r.omem, lines('NAME', 'ldg2', '', 'MEMORY', '    RA               PA               SIZE', '    0x8000000        0x148000000      1G', ''), 'ldm ls -o memory ldg2');
  const onet = r.onet;
  t.equal(onet.stdout.split('\n').slice(0, 3).join('\n'), `VERSION 1.6\nDOMAIN|name=ldg1|\nVNET|name=vnet0|dev=network@0|service=primary-vsw0@primary|mac-addr=${vnetMac}|mode=|pvid=|vid=|mtu=1500|linkprop=|id=0`);

  // Machine-wide listings (6.2-6.7).
  const dev = r.dev;
  exact(t, dev, lines('MEMORY', '    PA                   SIZE', '    0x1c8000000          57G'), 'ldm list-devices mem (6.4)');
  const devA = r.devA;
  exact(
    t,
    devA,
    lines('VERSION 1.6', 'MEMORY', '|pa=0x8000000|size=4294967296|bound=primary', '|pa=0x108000000|size=1073741824|bound=ldg1', '|pa=0x148000000|size=1073741824|bound=ldg2', '|pa=0x188000000|size=1073741824|bound=DR-PRD02-CBSRPT01', '|pa=0x1c8000000|size=61203283968'),
    'ldm list-devices -a -p memory (3.4: size is field 2, bound blocks say so)',
  );
  const cpu = r.cpu;
  t.match(cpu.stdout, /^CORE\n    ID      %FREE   CPUSET\n    5       100     \(40, 41, 42, 43, 44, 45, 46, 47\)\n/);
  t.match(cpu.stdout, /\n    \nVCPU\n    PID     %FREE   PM\n    40      100     ---\n/);
  t.notMatch(cpu.stdout, /^    39 /m, 'bound strands are not free');
  exact(t, r.svcp, lines(
    'VERSION 1.6',
    'VCC|name=primary-vcc0|ldom=primary|port-range=5000-5100',
    `VSW|name=primary-vsw0|ldom=primary|mac-addr=${(await serviceMac(a))}|net-dev=net0|id=0|dev=switch@0|mode=|pvid=|vid=|mtu=|linkprop=|inter-vnet-link=`,
    'VDS|name=primary-vds0|ldom=primary',
    '|vol=vol1|opts=|mpgroup=|dev=/dev/zvol/dsk/ldoms/vol1',
  ), 'ldm list-services -p');
  const svc = r.svc;
  t.match(svc.stdout, /^VCC\n    NAME             LDOM             PORT-RANGE\n    primary-vcc0     primary          5000-5100\n\nVSW\n/);
  t.match(svc.stdout, /\nVDS\n    NAME             LDOM             VOLUME         OPTIONS          MPGROUP        DEVICE\n    primary-vds0     primary          vol1                                           \/dev\/zvol\/dsk\/ldoms\/vol1\n\n$/);
  exact(t, r.var1, 'auto-boot?=false\n', 'ldm list-variable auto-boot? ldg1');
  exact(t, r.spc, 'factory-default [current]\n', 'ldm list-spconfig (6.6)');

  // list-constraints: text, -p with the record types of 3.4, and -x taken back by the agent.
  const cp = r.cp;
  t.equal(cp.status, 0);
  t.match(cp.stdout, /^VERSION 1\.6\nDOMAIN\|name=ldg2\nUUID\|uuid=/);
  t.match(cp.stdout, /^CONTROL\|failure-policy=ignore\|extended-mapin-space=off\|cpu-arch=native\|/m);
  t.match(cp.stdout, /^VCPU\|count=8\nMEMORY\|size=1073741824\n/m);
  const ct = r.ct;
  t.match(ct.stdout, /^DOMAIN\nldg2\n\nUUID\n    [0-9a-f-]{36}\n\n/);
  t.match(ct.stdout, /\nVCPU\n    COUNT\n    8\n\nMEMORY\n    SIZE\n    1G\n\n/);
  const before = await a.constraints('ldg2');
  const x = r.x;
  t.equal(x.status, 0);
  t.match(x.stdout, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<LDM_interface /);
  await a.must(request('unbind-domain', data('ldg2')));
  await a.must(request('remove-domain', data('ldg2')));
  await a.must(x.stdout);
  t.same(await a.constraints('ldg2'), before, 'list-constraints -x, sent back, recreates the domain as it was');


  // Failures: the agent's text on stderr, exit 1, what exists still listed; bad usage: exit 2.
  const missing = r.missing;
  t.same({ status: missing.status, stdout: missing.stdout, stderr: missing.stderr }, { status: 1, stdout: lines(table.split('\n')[0]!, table.split('\n')[4]!), stderr: 'LDom nosuch does not exist\n' }, 'an unknown domain');
  const missingP = r.missingP;
  t.same({ status: missingP.status, stdout: missingP.stdout, stderr: missingP.stderr }, { status: 1, stdout: '', stderr: 'LDom nosuch does not exist\n' }, 'ls -p of an unknown domain');
  const unset = r.unset;
  t.same({ status: unset.status, stdout: unset.stdout }, { status: 1, stdout: '' });
  t.match(unset.stderr, /not found/, 'an unset variable: "not found" (what scripts look for, 8.2)');
  const usage = { z: ['ls', '-z'], o: ['ls', '-o', 'bogus'], lo: ['ls', '-l', '-o', 'cpu'], v: ['list-variable'], xp: ['list-constraints', '-x', '-p'] };
  const u = await runLdmAll(usage, env);
  for (const [key, bad] of Object.entries(usage)) {
    const r = u[key as keyof typeof usage];
    t.equal(r.status, 2, `ldm ${bad.join(' ')}: exit 2`);
    t.equal(r.stdout, '', `ldm ${bad.join(' ')}: nothing on stdout`);
    t.match(r.stderr, /^ldm( [a-z-]+)?: .+\nusage: ldm /, `ldm ${bad.join(' ')}: the reason, then the usage`);
  }

  // Over TCP with a login: the same table.
  const pw = join(a.dir, 'admin.pw');
  writeFileSync(pw, `${ADMIN.password}\n`);
  chmodSync(pw, 0o600);
  const remote = await runLdm(['-H', `127.0.0.1:${a.port}`, '--ca', a.certs.ca, '-u', ADMIN.user, '--password-file', pw, 'list'], { env: { LDM_AGENT_STATE: join(a.dir, 'nowhere') } });
  exact(t, remote, table.replace(/^ldg2 .*\n/m, '') + 'ldg2             inactive   ------          8     1G\n', 'ldm -H ... list (ldg2 made again from its -x: inactive, with its constraints)');
  t.ok(p && l2, 'the listings read');
});

async function contentMac(a: AgentProc, name: string): Promise<string> {
  const r = await a.request(request('list-domain', data(name)));
  return itemsOf(contentOf(r, name), 'ldom_info')[0]!.rasd.get('Address')!;
}

async function serviceMac(a: AgentProc): Promise<string> {
  const r = await a.request(request('list-services', data('primary')));
  return itemsOf(contentOf(r, 'primary'), 'vsw')[0]!.rasd.get('Address')!;
}

t.test('-o status during a migration, on both sides, and after it', async (t) => {
  const { a, b } = await startPair(t, { a: { env: { LDM_AGENT_TEST_HOLD: 'precopy' } } });
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '8M' } });
  const pending = migrate(a, b, 'ldg1', { client: await a.client() });
  await waitFor(async () => {
    const m = await a.migration('ldg1');
    return m?.['phase'] === 'precopy' && Number(m['iterations']) >= 1;
  }, 15_000, 'the source held after its first pass');
  const src = (await a.listDomain('ldg1'))!;
  const dst = (await b.listDomain('ldg1'))!;
  const progress = src['progress']!.replace('%', '');

  const tp = dst['progress']!.replace('%', '');
  const held = await runLdmAll({ text: ['ls', '-o', 'status', 'ldg1'], p: ['ls', '-o', 'status', '-p', 'ldg1'], row: ['ls', 'ldg1'] }, local(a));
  const onB = await runLdmAll({ p: ['ls', '-o', 'status', '-p', 'ldg1'], row: ['ls', 'ldg1'] }, local(b));

  // 4.2: OPERATION / PROGRESS / TARGET on the source, SOURCE on the target.
  exact(
    t,
    held.text,
    lines('NAME', 'ldg1', '', 'STATUS', '    OPERATION    PROGRESS    TARGET', `    migration    ${`${progress}%`.padEnd(12)}${b.address}`, ''),
    'source: ldm ls -o status',
  );
  exact(t, held.p, lines('VERSION 1.6', 'DOMAIN|name=ldg1|', 'STATUS', `|op=migration|progress=${progress}|error=no|target=${b.address}`), 'source: ldm ls -o status -p');
  exact(t, onB.p, lines('VERSION 1.6', 'DOMAIN|name=ldg1|', 'STATUS', `|op=migration|progress=${tp}|error=no|source=${dst['source']}`), 'target: ldm ls -o status -p');
  t.match(steady(held.row.stdout), /^ldg1             active     -n---s  5000    8     1G$/m, 'the source domain has flag s (4.2)');
  t.match(onB.row.stdout, /^ldg1             bound      -----t  \d+ +8     1G$/m, 'the target domain has flag t');

  // Cancelled: the source runs on, no operation left to show.
  await a.must(request('cancel-operation', data('ldg1'), 'migration'));
  await pending;
  exact(t, await runLdm(['ls', '-o', 'status', 'ldg1'], local(a)), lines('NAME', 'ldg1', ''), 'after the cancel: no STATUS');

  // A migration that completes: the domain is gone from the source (4.1: "not found"), runs on the target.
  await a.stop();
  await a.start({ env: {} });
  const done = await migrate(a, b, 'ldg1');
  t.ok(done.ok, `migrated: ${done.all.join(' | ')}`);
  const [gone, after] = await Promise.all([runLdm(['ls', '-o', 'status', 'ldg1'], local(a)), runLdmAll({ status: ['ls', '-o', 'status', 'ldg1'], row: ['ls', 'ldg1'] }, local(b))]);
  t.same({ status: gone.status, stdout: gone.stdout, stderr: gone.stderr }, { status: 1, stdout: '', stderr: 'LDom ldg1 does not exist\n' }, 'source after: the agent says the domain is not there');
  exact(t, after.status, lines('NAME', 'ldg1', ''), 'target after: no STATUS');
  t.match(after.row.stdout, /^ldg1             active     -n----  /m, 'target after: running, no migration flag');
});
