/**
 * The machine-wide listings as `ldm` prints them: `list-devices`
 * (ldm-cli-outputs.md 6.2-6.4, 3.5), `list-services` (6.7, 3.4) and
 * `list-spconfig` (6.6). Pure functions on the agent's answers.
 *
 * The agent's list-devices names only what is free; the bound resources (for
 * `-a`, and for each core's share of free strands) come from list-bindings of
 * every domain, sent in the same request.
 */
import type { Content, Item, Section } from '../../xml/document.ts';
import { columns, cpuset, itemsOf, parseable, section, sizeBytes, sizeText } from './format.ts';

export const DEVICE_KINDS = ['core', 'cpu', 'mau', 'memory', 'io'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];
/** Oracle's other spellings of the resource names. */
export const DEVICE_ALIASES: Record<string, DeviceKind> = { vcpu: 'cpu', crypto: 'mau', mem: 'memory' };

interface StrandRow {
  pid: number;
  cid: number;
  bound: string;
}

interface MachineView {
  strands: StrandRow[];
  maus: { id: number; cid: number | undefined; bound: string }[];
  memory: { pa: string; size: string; bound: string }[];
  io: { name: string; alias: string; bound: string }[];
}

const num = (v: string | undefined): number => Number(v ?? NaN);

/**
 * Free resources (list-devices), bound ones (list-bindings of all domains)
 * and bus pseudonyms (list-io) as one view of the machine.
 */
export function machineView(devices: Section[], bindings: Content[], ioAlias: Map<string, string>, ioOrder: string[] = []): MachineView {
  const free = devices.flatMap((s) => s.items);
  const strands: StrandRow[] = [];
  const maus: MachineView['maus'] = [];
  const memory: MachineView['memory'] = [];
  const io: MachineView['io'] = [];
  for (const it of free) {
    if (it.type === 'cpu') for (const b of it.bindings) strands.push({ pid: num(b.props.get('pid')), cid: num(b.props.get('cid')), bound: '' });
    else if (it.type === 'mau') for (const b of it.bindings) maus.push({ id: num(b.props.get('id')), cid: undefined, bound: '' });
    else if (it.type === 'memory') for (const b of it.bindings) memory.push({ pa: b.props.get('pa') ?? '', size: b.props.get('size') ?? '', bound: '' });
    else if (it.type === 'physio_device') io.push({ name: it.props.get('name') ?? '', alias: '', bound: '' });
  }
  for (const c of bindings) {
    const items = itemsOf(c);
    const first = (type: string): Item | undefined => items.find((i) => i.type === type);
    for (const b of first('cpu')?.bindings ?? []) strands.push({ pid: num(b.props.get('pid')), cid: num(b.props.get('cid')), bound: c.id });
    for (const b of first('mau')?.bindings ?? []) maus.push({ id: num(b.props.get('id')), cid: num(b.props.get('cid')), bound: c.id });
    for (const b of first('memory')?.bindings ?? []) memory.push({ pa: b.props.get('pa') ?? '', size: b.props.get('size') ?? '', bound: c.id });
    // Devices of a bound or active domain only: an inactive domain's are constraints, still the machine's.
    const state = first('ldom_info')?.props.get('state');
    if (state && state !== 'inactive') for (const d of items.filter((i) => i.type === 'physio_device')) io.push({ name: d.props.get('name') ?? '', alias: '', bound: c.id });
  }
  // A free crypto unit names no core: units are spread evenly over the cores (machine.ts: cryptoUnitsPerCore).
  const coreCount = new Set(strands.map((s) => s.cid)).size;
  const perCore = coreCount > 0 ? Math.max(1, Math.round(maus.length / coreCount)) : 1;
  for (const m of maus) m.cid ??= Math.floor(m.id / perCore);
  for (const d of io) d.alias = ioAlias.get(d.name) ?? '';
  strands.sort((a, b) => a.pid - b.pid);
  maus.sort((a, b) => a.id - b.id);
  memory.sort((a, b) => (BigInt(a.pa || '0') < BigInt(b.pa || '0') ? -1 : 1));
  // The machine's order where list-io gives it; a device it does not name goes last.
  const rank = (name: string) => (ioOrder.includes(name) ? ioOrder.indexOf(name) : ioOrder.length);
  io.sort((a, b) => rank(a.name) - rank(b.name));
  return { strands, maus, memory, io };
}

interface CoreRow {
  cid: number;
  free: number;
  pids: number[];
  freePids: number[];
}

function coreRows(v: MachineView): CoreRow[] {
  const map = new Map<number, CoreRow>();
  for (const s of v.strands) {
    const row = map.get(s.cid) ?? { cid: s.cid, free: 0, pids: [], freePids: [] };
    row.pids.push(s.pid);
    if (!s.bound) row.freePids.push(s.pid);
    map.set(s.cid, row);
  }
  const rows = [...map.values()].sort((a, b) => a.cid - b.cid);
  for (const r of rows) r.free = Math.round((100 * r.freePids.length) / r.pids.length);
  return rows;
}

const pct = (bound: string) => (bound ? '0' : '100');

/**
 * `ldm list-devices [-a] [KIND...]`: without -a what is free (cores with a
 * free strand), with -a everything and who has it. Sections are parted by a
 * line of four blanks, as the 6.2 capture shows.
 */
export function devicesText(v: MachineView, kinds: readonly DeviceKind[], all: boolean): string[] {
  const blocks: string[][] = [];
  const keep = <T extends { bound: string }>(rows: T[]) => rows.filter((r) => all || !r.bound);
  for (const kind of DEVICE_KINDS.filter((k) => kinds.includes(k))) {
    if (kind === 'core') {
      const rows = coreRows(v).filter((r) => all || r.freePids.length > 0);
      if (rows.length > 0)
        blocks.push(['CORE', columns([7, 7], ['ID', '%FREE', 'CPUSET']), ...rows.map((r) => columns([7, 7], [String(r.cid), String(r.free), cpuset(all ? r.pids : r.freePids)]))]);
    } else if (kind === 'cpu') {
      const rows = keep(v.strands);
      if (rows.length > 0) blocks.push(['VCPU', columns([7, 7], ['PID', '%FREE', 'PM']), ...rows.map((s) => columns([7, 7], [String(s.pid), pct(s.bound), s.bound ? 'no' : '---']))]);
    } else if (kind === 'mau') {
      const rows = keep(v.maus);
      const pidsOf = (cid: number | undefined) => v.strands.filter((s) => s.cid === cid).map((s) => s.pid);
      if (rows.length > 0) blocks.push(['MAU', columns([7, 39], ['ID', 'CPUSET', 'BOUND']), ...rows.map((m) => columns([7, 39], [String(m.id), cpuset(pidsOf(m.cid)), m.bound]))]);
    } else if (kind === 'memory') {
      const rows = keep(v.memory);
      const head = all ? ['PA', 'SIZE', 'BOUND'] : ['PA', 'SIZE'];
      if (rows.length > 0) blocks.push(['MEMORY', columns([20, 15], head), ...rows.map((m) => columns([20, 15], [m.pa, sizeText(m.size), m.bound]))]);
    } else {
      const rows = keep(v.io);
      if (rows.length > 0)
        blocks.push(['IO', columns([16, 16, 7], ['DEVICE', 'PSEUDONYM', 'BOUND', 'OPTIONS']), ...rows.map((d) => columns([16, 16, 7], [d.name, d.alias, d.bound ? 'yes' : 'no', '']))]);
    }
  }
  const out: string[] = [];
  blocks.forEach((b, i) => {
    if (i > 0) out.push('    ');
    out.push(b[0]!, ...b.slice(1).map((l) => `    ${l}`));
  });
  return out;
}

/** `ldm list-devices -p`: one record kind per section, `|k=v` rows (3.5; `pm=` empty for a free strand). */
export function devicesRecords(v: MachineView, kinds: readonly DeviceKind[], all: boolean): string[] {
  const out: string[] = [];
  const keep = <T extends { bound: string }>(rows: T[]) => rows.filter((r) => all || !r.bound);
  for (const kind of DEVICE_KINDS.filter((k) => kinds.includes(k))) {
    if (kind === 'core') {
      const rows = coreRows(v).filter((r) => all || r.freePids.length > 0);
      if (rows.length > 0) out.push('CORE', ...rows.map((r) => parseable('', [['cid', String(r.cid)], ['free', String(r.free)], ['cpuset', (all ? r.pids : r.freePids).join(',')]])));
    } else if (kind === 'cpu') {
      const rows = keep(v.strands);
      if (rows.length > 0) out.push('VCPU', ...rows.map((s) => parseable('', [['pid', String(s.pid)], ['free', pct(s.bound)], ['pm', s.bound ? 'no' : '']])));
    } else if (kind === 'mau') {
      const rows = keep(v.maus);
      if (rows.length > 0) out.push('MAU', ...rows.map((m) => parseable('', [['id', String(m.id)], ['cid', String(m.cid)], ...(m.bound ? [['bound', m.bound] as [string, string]] : [])])));
    } else if (kind === 'memory') {
      const rows = keep(v.memory);
      if (rows.length > 0) out.push('MEMORY', ...rows.map((m) => parseable('', [['pa', m.pa], ['size', sizeBytes(m.size)], ...(m.bound ? [['bound', m.bound] as [string, string]] : [])])));
    } else {
      const rows = keep(v.io);
      if (rows.length > 0) out.push('IO', ...rows.map((d) => parseable('', [['dev', d.name], ['alias', d.alias], ...(d.bound ? [['bound', d.bound] as [string, string]] : [])])));
    }
  }
  return out;
}

// ── list-services ──────────────────────────────────────────────────────────

const VCC_W = [16, 16];
const VSW_W = [16, 16, 17, 9, 4, 10, 10, 15, 4, 20, 5, 6];
const VDS_W = [16, 16, 14, 16, 14];

const p = (it: Item, key: string): string => it.props.get(key) ?? '';

/** `ldm list-services`: a VCC, a VSW and a VDS block, each of every service the named domains provide (6.7, unverified). */
export function servicesText(contents: Content[]): string[] {
  const of = (type: string) => contents.flatMap((c) => itemsOf(c, type).map((it) => ({ ldom: c.id, it })));
  const out: string[] = [];
  const vcc = of('vcc');
  if (vcc.length > 0)
    out.push(...section('VCC', [columns(VCC_W, ['NAME', 'LDOM', 'PORT-RANGE']), ...vcc.map(({ ldom, it }) => columns(VCC_W, [p(it, 'service_name'), ldom, `${p(it, 'min_port')}-${p(it, 'max_port')}`]))]));
  const vsw = of('vsw');
  if (vsw.length > 0)
    out.push(
      ...section('VSW', [
        columns(VSW_W, ['NAME', 'LDOM', 'MAC', 'NET-DEV', 'ID', 'DEVICE', 'LINKPROP', 'DEFAULT-VLAN-ID', 'PVID', 'VID', 'MTU', 'MODE', 'INTER-VNET-LINK']),
        ...vsw.map(({ ldom, it }) =>
          columns(VSW_W, [p(it, 'service_name'), ldom, it.rasd.get('Address') ?? '', p(it, 'dev_path'), p(it, 'id'), `switch@${p(it, 'id')}`, p(it, 'linkprop'), '', p(it, 'pvid'), p(it, 'vid'), p(it, 'mtu'), p(it, 'mode'), p(it, 'inter_vnet_link')]),
        ),
      ]),
    );
  const vds = of('vds');
  if (vds.length > 0) {
    const rows: string[] = [columns(VDS_W, ['NAME', 'LDOM', 'VOLUME', 'OPTIONS', 'MPGROUP', 'DEVICE'])];
    for (const { ldom, it } of vds) {
      const name = p(it, 'service_name');
      const vols = contents.flatMap((c) => itemsOf(c, 'vds_volume')).filter((v) => p(v, 'service_name') === name);
      if (vols.length === 0) rows.push(columns(VDS_W, [name, ldom]));
      vols.forEach((v, i) => rows.push(columns(VDS_W, [i === 0 ? name : '', i === 0 ? ldom : '', p(v, 'vol_name'), p(v, 'vol_opts'), p(v, 'mpgroup'), p(v, 'block_dev')])));
    }
    out.push(...section('VDS', rows));
  }
  return out;
}

/** `ldm list-services -p`: `VCC|...`, `VSW|name=...`, `VDS|name=...` with its `|vol=...` lines (3.4). */
export function servicesRecords(contents: Content[]): string[] {
  const out: string[] = [];
  const of = (type: string) => contents.flatMap((c) => itemsOf(c, type).map((it) => ({ ldom: c.id, it })));
  for (const { ldom, it } of of('vcc')) out.push(parseable('VCC', [['name', p(it, 'service_name')], ['ldom', ldom], ['port-range', `${p(it, 'min_port')}-${p(it, 'max_port')}`]]));
  for (const { ldom, it } of of('vsw'))
    out.push(
      parseable('VSW', [
        ['name', p(it, 'service_name')], ['ldom', ldom], ['mac-addr', it.rasd.get('Address') ?? ''], ['net-dev', p(it, 'dev_path')], ['id', p(it, 'id')], ['dev', `switch@${p(it, 'id')}`],
        ['mode', p(it, 'mode')], ['pvid', p(it, 'pvid')], ['vid', p(it, 'vid')], ['mtu', p(it, 'mtu')], ['linkprop', p(it, 'linkprop')], ['inter-vnet-link', p(it, 'inter_vnet_link')],
      ]),
    );
  for (const { ldom, it } of of('vds')) {
    const name = p(it, 'service_name');
    out.push(parseable('VDS', [['name', name], ['ldom', ldom]]));
    for (const v of contents.flatMap((c) => itemsOf(c, 'vds_volume')).filter((x) => p(x, 'service_name') === name))
      out.push(parseable('', [['vol', p(v, 'vol_name')], ['opts', p(v, 'vol_opts')], ['mpgroup', p(v, 'mpgroup')], ['dev', p(v, 'block_dev')]]));
  }
  return out;
}

/** `ldm list-spconfig`: one configuration a line, the one in use marked `[current]` (6.6). */
export function spconfigLines(sections: Section[]): string[] {
  return sections
    .flatMap((s) => s.items)
    .filter((i) => i.type === 'spconfig')
    .map((i) => {
      const status = p(i, 'spconfig_status');
      return status ? `${p(i, 'spconfig_name')} [${status}]` : p(i, 'spconfig_name');
    });
}
