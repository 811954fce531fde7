/**
 * A domain as `ldm list-domain` prints it, from the agent's listing Content
 * (list-domain, list-bindings): the table (ldm-cli-outputs.md 1.1), the long
 * form (section 2), the parseable forms (section 3) and the `-o` views
 * (sections 4 and 6.4). Pure functions: Content in, lines out.
 *
 * Where the samples are silent, our choices (README): the control domain's
 * console is `UART`; an inactive domain's long form shows its UUID and what it
 * has without bindings (variables, networks, disks); the NETWORK, DISK and
 * VCONS columns follow the 3.x guides' headers as remembered (unverified).
 */
import type { Content, Item } from '../../xml/document.ts';
import {
  columns,
  cpuset,
  firstItem,
  flagsSpelled,
  itemsOf,
  parseable,
  section,
  sizeBytes,
  sizeText,
  uptimeText,
  utilNumber,
  utilText,
} from './format.ts';

/** What the long form shows besides a domain's own Content: from list-io and list-services in the same request. */
export interface LongContext {
  /** Bus device path (pci@400) -> pseudonym (pci_0). */
  ioAlias: Map<string, string>;
  /** Service name -> the domain providing it (vcc, vds, vsw). */
  serviceDomain: Map<string, string>;
}

export const emptyContext = (): LongContext => ({ ioAlias: new Map(), serviceDomain: new Map() });

const TABLE_WIDTHS = [16, 10, 7, 7, 5, 8, 5] as const;
export const TABLE_HEADER = columns(TABLE_WIDTHS, ['NAME', 'STATE', 'FLAGS', 'CONS', 'VCPU', 'MEMORY', 'UTIL', 'UPTIME']);
/** Between the domains of a long listing (our choice: a rule as wide as the header line of 3.x with NORM). */
export const DOMAIN_RULE = '-'.repeat(78);

const info = (c: Content): Item | undefined => firstItem(c, 'ldom_info');
const prop = (c: Content, key: string): string => info(c)?.props.get(key) ?? '';
const isControl = (c: Content): boolean => prop(c, 'flags')[3] === 'c';
const state = (c: Content): string => prop(c, 'state');

/** The CONS column: the console's port, `UART` for the control domain, nothing while inactive. */
function cons(c: Content): string {
  if (state(c) === 'inactive') return '';
  const port = firstItem(c, 'console')?.props.get('port');
  if (port) return port;
  return isControl(c) ? 'UART' : '';
}

const vcpus = (c: Content): string => firstItem(c, 'cpu')?.rasd.get('AllocationUnits') ?? '';
const memory = (c: Content): string => firstItem(c, 'memory')?.rasd.get('AllocationUnits') ?? '';

/** One table row (1.1): a bound or inactive domain's row ends after its last non-empty field. */
export function tableRow(c: Content): string {
  return columns(TABLE_WIDTHS, [c.id, state(c), prop(c, 'flags'), cons(c), vcpus(c), sizeText(memory(c)), utilText(prop(c, 'util') || undefined), uptimeText(prop(c, 'uptime') || undefined)]);
}

/** The DOMAIN line of `-p` (3.1, 3.2): flags abbreviated, or spelled out with `-l` (3.3, 5.1). */
export function domainLine(c: Content, long: boolean): string {
  const flags = long ? flagsSpelled(prop(c, 'flags')) : prop(c, 'flags');
  const fields: [string, string][] = [
    ['name', c.id],
    ['state', state(c)],
    ['flags', flags],
    ['cons', cons(c)],
    ['ncpu', vcpus(c)],
    ['mem', sizeBytes(memory(c))],
    ['util', utilNumber(prop(c, 'util') || undefined)],
    ['uptime', prop(c, 'uptime')],
  ];
  const soft = prop(c, 'softstate');
  if (long && soft) fields.push(['softstate', soft]);
  return parseable('DOMAIN', fields);
}

// ── the resources of a bound domain, as rows ───────────────────────────────

interface Strand {
  vid: string;
  pid: string;
  cid: string;
  util: string;
}

const strands = (c: Content): Strand[] =>
  (firstItem(c, 'cpu')?.bindings ?? []).map((b) => ({ vid: b.props.get('vid') ?? '', pid: b.props.get('pid') ?? '', cid: b.props.get('cid') ?? '', util: b.props.get('util') ?? '' }));

/** Core id -> the domain's strands on it, in core order. */
function cores(c: Content): [string, string[]][] {
  const map = new Map<string, string[]>();
  for (const s of strands(c)) map.set(s.cid, [...(map.get(s.cid) ?? []), s.pid]);
  return [...map].sort((a, b) => Number(a[0]) - Number(b[0]));
}

function maus(c: Content): [string, string[]][] {
  const byCore = new Map(cores(c));
  return (firstItem(c, 'mau')?.bindings ?? []).map((b) => [b.props.get('id') ?? '', byCore.get(b.props.get('cid') ?? '') ?? []]);
}

const memoryBlocks = (c: Content) =>
  (firstItem(c, 'memory')?.bindings ?? []).map((b) => ({ ra: b.props.get('ra') ?? '', pa: b.props.get('pa') ?? '', size: b.props.get('size') ?? '' }));

const variables = (c: Content): [string, string][] => itemsOf(c, 'var').map((v) => [v.props.get('name') ?? '', v.props.get('value') ?? '']);

const withDomain = (service: string, ctx: LongContext): string => {
  const dom = ctx.serviceDomain.get(service);
  return dom && service !== '' ? `${service}@${dom}` : service;
};

interface Vnet {
  name: string;
  service: string;
  id: string;
  device: string;
  mac: string;
  mode: string;
  pvid: string;
  vid: string;
  mtu: string;
  linkprop: string;
}

function vnets(c: Content, ctx: LongContext): Vnet[] {
  return itemsOf(c, 'network').map((n) => {
    const b = n.bindings[0];
    const service = n.props.get('service_name') ?? '';
    return {
      name: n.props.get('vnet_name') ?? '',
      service: b?.props.get('peer') ?? withDomain(service, ctx),
      id: b?.props.get('id') ?? '',
      device: b?.props.get('device') ?? '',
      mac: n.rasd.get('Address') ?? '',
      mode: n.props.get('mode') ?? '',
      pvid: n.props.get('pvid') ?? '',
      vid: n.props.get('vid') ?? '',
      mtu: b?.props.get('mtu') ?? '',
      linkprop: n.props.get('linkprop') ?? '',
    };
  });
}

interface Vdisk {
  name: string;
  volume: string;
  timeout: string;
  id: string;
  device: string;
  server: string;
  mpgroup: string;
}

function vdisks(c: Content, ctx: LongContext): Vdisk[] {
  return itemsOf(c, 'disk').map((d) => {
    const b = d.bindings[0];
    const service = d.props.get('service_name') ?? '';
    return {
      name: d.props.get('vdisk_name') ?? '',
      volume: `${d.props.get('vol_name') ?? ''}@${service}`,
      timeout: d.props.get('timeout') ?? '',
      id: b?.props.get('id') ?? '',
      device: b?.props.get('device') ?? '',
      server: b?.props.get('server') ?? ctx.serviceDomain.get(service) ?? '',
      mpgroup: d.props.get('mpgroup') ?? '',
    };
  });
}

function vcons(c: Content, ctx: LongContext): { group: string; service: string; port: string; log: string } | undefined {
  const item = firstItem(c, 'console');
  if (!item) return isControl(c) && state(c) !== 'inactive' ? { group: 'UART', service: '', port: '', log: '' } : undefined;
  const log = item.props.get('enable-log');
  return {
    group: item.props.get('group') ?? c.id,
    service: withDomain(item.props.get('service_name') ?? '', ctx),
    port: item.props.get('port') ?? '',
    log: log === undefined ? '' : log === 'true' || log === 'on' ? 'on' : 'off',
  };
}

const ioDevices = (c: Content, ctx: LongContext): [string, string][] => itemsOf(c, 'physio_device').map((d) => {
  const name = d.props.get('name') ?? '';
  return [name, ctx.ioAlias.get(name) ?? ''];
});

const CONTROL_KEYS = ['failure-policy', 'extended-mapin-space', 'cpu-arch', 'rc-add-policy', 'shutdown-group', 'perf-counters', 'boot-policy', 'max-cores'];

// ── text sections ──────────────────────────────────────────────────────────

const NET_WIDTHS = [12, 27, 4, 10, 17, 6, 4, 20, 5, 10];
const NET_HEADER = ['NAME', 'SERVICE', 'ID', 'DEVICE', 'MAC', 'MODE', 'PVID', 'VID', 'MTU', 'MAXBW', 'LINKPROP'];
const DISK_WIDTHS = [16, 27, 4, 4, 7, 14];
const DISK_HEADER = ['NAME', 'VOLUME', 'TOUT', 'ID', 'DEVICE', 'SERVER', 'MPGROUP'];

export function networkSection(c: Content, ctx: LongContext): string[] {
  const rows = vnets(c, ctx);
  if (rows.length === 0) return [];
  return section('NETWORK', [
    columns(NET_WIDTHS, NET_HEADER),
    ...rows.map((n) => columns(NET_WIDTHS, [n.name, n.service, n.id, n.device, n.mac, n.mode, n.pvid, n.vid, n.mtu, '', n.linkprop])),
  ]);
}

export function diskSection(c: Content, ctx: LongContext): string[] {
  const rows = vdisks(c, ctx);
  if (rows.length === 0) return [];
  return section('DISK', [columns(DISK_WIDTHS, DISK_HEADER), ...rows.map((d) => columns(DISK_WIDTHS, [d.name, d.volume, d.timeout, d.id, d.device, d.server, d.mpgroup]))]);
}

export function cpuSections(c: Content): string[] {
  const list = strands(c);
  if (list.length === 0) return [];
  return [
    ...section('CORE', [columns([6], ['CID', 'CPUSET']), ...cores(c).map(([cid, pids]) => columns([6], [cid, cpuset(pids)]))]),
    ...section('VCPU', [
      columns([6, 6, 6, 4], ['VID', 'PID', 'CID', 'UTIL', 'STRAND']),
      ...list.map((s) => columns([6, 6, 6, 4], [s.vid, s.pid, s.cid, utilText(s.util || undefined), '100%'.padStart(6)])),
    ]),
  ];
}

export function memorySection(c: Content): string[] {
  const blocks = memoryBlocks(c);
  if (blocks.length === 0) return [];
  return section('MEMORY', [columns([16, 16], ['RA', 'PA', 'SIZE']), ...blocks.map((b) => columns([16, 16], [b.ra, b.pa, sizeText(b.size)]))]);
}

export function statusSection(c: Content): string[] {
  const op = prop(c, 'operation');
  if (!op) return [];
  const peerKey = prop(c, 'target') ? 'TARGET' : 'SOURCE';
  const peer = prop(c, 'target') || prop(c, 'source');
  return section('STATUS', [columns([12, 11], ['OPERATION', 'PROGRESS', peerKey]), columns([12, 11], [op, prop(c, 'progress'), peer])]);
}

/** The sections of `ldm list -l` and `list-bindings` after the table (2.1-2.4). */
export function longSections(c: Content, ctx: LongContext): string[] {
  const out: string[] = [];
  const bound = state(c) !== 'inactive';
  const soft = prop(c, 'softstate');
  if (soft) out.push(...section('SOFTSTATE', [soft], ''));
  out.push(...section('UUID', [info(c)?.uuid ?? prop(c, 'uuid')]));
  if (bound) {
    const mac = info(c)?.rasd.get('Address');
    if (mac) out.push(...section('MAC', [mac]));
    out.push(...section('HOSTID', [prop(c, 'hostid')]));
    out.push(...section('CONTROL', CONTROL_KEYS.map((k) => `${k}=${prop(c, k)}`)));
    out.push(...section('DEPENDENCY', [`master=${prop(c, 'master')}`]));
    out.push(...statusSection(c));
    out.push(...cpuSections(c));
    const m = maus(c);
    if (m.length > 0) out.push(...section('MAU', [columns([6], ['ID', 'CPUSET']), ...m.map(([id, pids]) => columns([6], [id, cpuset(pids)]))]));
    out.push(...memorySection(c));
  }
  const vars = variables(c);
  if (vars.length > 0) out.push(...section('VARIABLES', vars.map(([k, v]) => `${k}=${v}`)));
  if (bound) {
    const io = ioDevices(c, ctx);
    if (io.length > 0) out.push(...section('IO', [columns([16, 16], ['DEVICE', 'PSEUDONYM', 'OPTIONS']), ...io.map(([d, a]) => columns([16, 16], [d, a, '']))]));
  }
  out.push(...networkSection(c, ctx), ...diskSection(c, ctx));
  const con = bound ? vcons(c, ctx) : undefined;
  if (con) out.push(...section('VCONS', [columns([16, 27, 6], ['NAME', 'SERVICE', 'PORT', 'LOGGING']), columns([16, 27, 6], [con.group, con.service, con.port, con.log])]));
  return out;
}

// ── parseable records ──────────────────────────────────────────────────────

export const vnetRecords = (c: Content, ctx: LongContext): string[] =>
  vnets(c, ctx).map((n) =>
    parseable('VNET', [['name', n.name], ['dev', n.device], ['service', n.service], ['mac-addr', n.mac], ['mode', n.mode], ['pvid', n.pvid], ['vid', n.vid], ['mtu', n.mtu], ['linkprop', n.linkprop], ['id', n.id]]),
  );

export const vdiskRecords = (c: Content, ctx: LongContext): string[] =>
  vdisks(c, ctx).map((d) => parseable('VDISK', [['name', d.name], ['vol', d.volume], ['timeout', d.timeout], ['dev', d.device], ['server', d.server], ['mpgroup', d.mpgroup], ['id', d.id]]));

export function cpuRecords(c: Content): string[] {
  const list = strands(c);
  if (list.length === 0) return [];
  return [
    'CORE',
    ...cores(c).map(([cid, pids]) => parseable('', [['cid', cid], ['cpuset', pids.join(',')]])),
    'VCPU',
    ...list.map((s) => parseable('', [['vid', s.vid], ['pid', s.pid], ['cid', s.cid], ['util', utilNumber(s.util)], ['strand', '100']])),
  ];
}

export function memoryRecords(c: Content): string[] {
  const blocks = memoryBlocks(c);
  if (blocks.length === 0) return [];
  return ['MEMORY', ...blocks.map((b) => parseable('', [['ra', b.ra], ['pa', b.pa], ['size', sizeBytes(b.size)]]))];
}

export function statusRecords(c: Content): string[] {
  const op = prop(c, 'operation');
  if (!op) return [];
  const peer: [string, string] = prop(c, 'target') ? ['target', prop(c, 'target')] : ['source', prop(c, 'source')];
  return ['STATUS', parseable('', [['op', op], ['progress', prop(c, 'progress').replace(/%$/, '')], ['error', prop(c, 'error') || 'no'], peer])];
}

/** `ldm list -l -p` and `list-bindings -p`: the DOMAIN line, then one record per section (3.2, 3.3). */
export function longRecords(c: Content, ctx: LongContext): string[] {
  const out = [domainLine(c, true), parseable('UUID', [['uuid', info(c)?.uuid ?? prop(c, 'uuid')]])];
  const bound = state(c) !== 'inactive';
  if (bound) {
    const mac = info(c)?.rasd.get('Address');
    if (mac) out.push(parseable('MAC', [['mac-addr', mac]]));
    out.push(parseable('HOSTID', [['hostid', prop(c, 'hostid')]]));
    out.push(parseable('CONTROL', CONTROL_KEYS.map((k) => [k, prop(c, k)] as [string, string])));
    out.push(parseable('DEPENDENCY', [['master', prop(c, 'master')]]));
    out.push(...statusRecords(c), ...cpuRecords(c));
    const m = maus(c);
    if (m.length > 0) out.push('MAU', ...m.map(([id, pids]) => parseable('', [['id', id], ['cpuset', pids.join(',')]])));
    out.push(...memoryRecords(c));
  }
  const vars = variables(c);
  if (vars.length > 0) out.push('VARIABLES', ...vars.map(([k, v]) => parseable('', [[k, v]])));
  if (bound) {
    const io = ioDevices(c, ctx);
    if (io.length > 0) out.push('IO', ...io.map(([d, a]) => parseable('', [['dev', d], ['alias', a]])));
  }
  out.push(...vnetRecords(c, ctx), ...vdiskRecords(c, ctx));
  const con = bound ? vcons(c, ctx) : undefined;
  if (con) out.push(parseable('VCONS', [['group', con.group], ['service', con.service], ['port', con.port], ['log', con.log]]));
  return out;
}

// ── -o views ───────────────────────────────────────────────────────────────

export const O_FORMATS = ['status', 'cpu', 'memory', 'network', 'disk'] as const;
export type OFormat = (typeof O_FORMATS)[number];
/** Oracle's short spellings. */
export const O_ALIASES: Record<string, OFormat> = { mem: 'memory', net: 'network', core: 'cpu', vcpu: 'cpu' };

/** `ldm list -o FORMAT`: NAME, the domain's name, then the sections asked for (4.2, 6.4). */
export function oSections(c: Content, formats: readonly OFormat[], ctx: LongContext): string[] {
  const out = section('NAME', [c.id], '');
  for (const f of formats) {
    if (f === 'status') out.push(...statusSection(c));
    else if (f === 'cpu') out.push(...cpuSections(c));
    else if (f === 'memory') out.push(...memorySection(c));
    else if (f === 'network') out.push(...networkSection(c, ctx));
    else out.push(...diskSection(c, ctx));
  }
  return out;
}

/** `ldm list -o FORMAT -p`: `DOMAIN|name=NAME|`, then the records asked for (4.2, 3.4). */
export function oRecords(c: Content, formats: readonly OFormat[], ctx: LongContext): string[] {
  const out = [`DOMAIN|name=${c.id}|`];
  for (const f of formats) {
    if (f === 'status') out.push(...statusRecords(c));
    else if (f === 'cpu') out.push(...cpuRecords(c));
    else if (f === 'memory') out.push(...memoryRecords(c));
    else if (f === 'network') out.push(...vnetRecords(c, ctx));
    else out.push(...vdiskRecords(c, ctx));
  }
  return out;
}

// ── list-constraints ───────────────────────────────────────────────────────

/** `ldm list-constraints`: what was asked for, in the long form's style (6.8, unverified). */
export function constraintSections(c: Content, ctx: LongContext): string[] {
  const out = section('DOMAIN', [c.id], '');
  out.push(...section('UUID', [info(c)?.uuid ?? '']));
  const mac = info(c)?.rasd.get('Address');
  if (mac) out.push(...section('MAC', [mac]));
  out.push(...section('HOSTID', [prop(c, 'hostid')]));
  out.push(...section('CONTROL', CONTROL_KEYS.map((k) => `${k}=${prop(c, k)}`)));
  out.push(...section('DEPENDENCY', [`master=${prop(c, 'master')}`]));
  const cpu = firstItem(c, 'cpu');
  const wcore = cpu?.props.get('wcore');
  if (wcore) out.push(...section('CORE', ['COUNT', wcore]));
  if (cpu) out.push(...section('VCPU', ['COUNT', vcpus(c)]));
  const mau = firstItem(c, 'mau')?.rasd.get('AllocationUnits');
  if (mau) out.push(...section('MAU', ['COUNT', mau]));
  if (memory(c)) out.push(...section('MEMORY', ['SIZE', sizeText(memory(c))]));
  const vars = variables(c);
  if (vars.length > 0) out.push(...section('VARIABLES', vars.map(([k, v]) => `${k}=${v}`)));
  const io = itemsOf(c, 'physio_device').map((d) => d.props.get('name') ?? '');
  if (io.length > 0) out.push(...section('IO', ['DEVICE', ...io]));
  out.push(...networkSection(c, ctx), ...diskSection(c, ctx));
  const con = firstItem(c, 'console');
  if (con) {
    const log = con.props.get('enable-log');
    out.push(
      ...section('VCONS', [
        columns([16, 27, 6], ['NAME', 'SERVICE', 'PORT', 'LOGGING']),
        columns([16, 27, 6], [con.props.get('group') ?? c.id, withDomain(con.props.get('service_name') ?? '', ctx), con.props.get('port') ?? '', log === undefined ? '' : log === 'true' ? 'on' : 'off']),
      ]),
    );
  }
  return out;
}

/** `ldm list-constraints -p`: the record types public parsers read (3.4). */
export function constraintRecords(c: Content, ctx: LongContext): string[] {
  const out = [parseable('DOMAIN', [['name', c.id]]), parseable('UUID', [['uuid', info(c)?.uuid ?? '']])];
  const mac = info(c)?.rasd.get('Address');
  if (mac) out.push(parseable('MAC', [['mac-addr', mac]]));
  out.push(parseable('HOSTID', [['hostid', prop(c, 'hostid')]]));
  out.push(parseable('CONTROL', CONTROL_KEYS.map((k) => [k, prop(c, k)] as [string, string])));
  out.push(parseable('DEPENDENCY', [['master', prop(c, 'master')]]));
  const cpu = firstItem(c, 'cpu');
  if (cpu?.props.get('wcore')) out.push(parseable('CORE', [['count', cpu.props.get('wcore')!]]));
  if (cpu) out.push(parseable('VCPU', [['count', vcpus(c)]]));
  const mau = firstItem(c, 'mau')?.rasd.get('AllocationUnits');
  if (mau) out.push(parseable('MAU', [['count', mau]]));
  if (memory(c)) out.push(parseable('MEMORY', [['size', sizeBytes(memory(c))]]));
  const vars = variables(c);
  if (vars.length > 0) out.push('VARIABLES', ...vars.map(([k, v]) => parseable('', [[k, v]])));
  for (const d of itemsOf(c, 'physio_device')) out.push(parseable('IO', [['dev', d.props.get('name') ?? '']]));
  out.push(...vnetRecords(c, ctx), ...vdiskRecords(c, ctx));
  const con = firstItem(c, 'console');
  if (con) out.push(parseable('VCONS', [['group', con.props.get('group') ?? ''], ['service', con.props.get('service_name') ?? ''], ['port', con.props.get('port') ?? '']]));
  return out;
}
