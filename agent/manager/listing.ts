/**
 * The listing actions (protocol.md section 5): the model rendered as
 * Envelopes. list-domain and list-bindings show what is bound (with state and
 * flags); list-constraints shows what was asked, in the shape add-domain
 * takes, so its output can be fed back as input.
 */
import { refusalMessages } from '../messages.ts';
import { coreOf, freeMemory, freeStrands } from '../model/allocate.ts';
import { ioRows } from '../model/iov.ts';
import { FACTORY_DEFAULT, PRIMARY, type Ldm } from '../model/ldm.ts';
import { formatSize } from '../model/sizes.ts';
import type { DomainConfig } from '../model/types.ts';
import { failure, item, success, type Content, type Data, type Item, type Section } from '../xml/document.ts';

const hex = (n: number) => `0x${n.toString(16)}`;
const section = (items: Item[]): Section => ({ type: 'ResourceAllocationSection_Type', items });

/** Guest software state as `ldm list -l` shows it. */
const SOFTSTATE: Record<string, string> = { solaris: 'Solaris running', openboot: 'OpenBoot Running', kmdb: 'Solaris debugging' };

type Listing = (ldm: Ldm, domains: DomainConfig[]) => { contents: Content[]; sections: Section[] };

function ldomInfo(ldm: Ldm, d: DomainConfig, withState: boolean): Item {
  const props: Record<string, string> = {};
  if (withState) {
    props['state'] = d.state;
    props['flags'] = ldm.flags(d);
    // The control domain runs the OS that runs us.
    const soft = d.state !== 'active' ? undefined : d.name === PRIMARY ? 'solaris' : ldm.guestStatus(d.name);
    if (soft) props['softstate'] = SOFTSTATE[soft] ?? soft;
    // Seconds since the guest booted (the control domain: since the agent started, which stands for its boot).
    const uptime = d.state !== 'active' ? undefined : d.name === PRIMARY ? Math.floor(process.uptime()) : ldm.guestUptime(d.name);
    if (uptime !== undefined) props['uptime'] = String(uptime);
    Object.assign(props, migrationProps(ldm, d), workloadProps(ldm, d));
  }
  // Every property add-domain takes (agent/model/properties.ts), so that list-constraints output recreates the domain.
  props['hostid'] = d.hostid;
  if (d.master.length > 0) props['master'] = d.master.join(',');
  props['failure-policy'] = d.failurePolicy;
  props['extended-mapin-space'] = d.extendedMapinSpace;
  props['cpu-arch'] = d.cpuArch;
  props['rc-add-policy'] = d.rcAddPolicy;
  props['perf-counters'] = d.perfCounters;
  props['boot-policy'] = d.bootPolicy;
  props['shutdown-group'] = String(d.shutdownGroup);
  props['max-cores'] = d.maxCores;
  return { ...item('ldom_info', props, { Address: d.mac }), uuid: d.uuid };
}

/**
 * A migrating domain, as `ldm list -o status` shows it: the operation, its
 * progress, the peer (`target` on the source, `source` on the target) and
 * whether it is in the error state. Output only (agent/manager/objects.ts).
 */
function migrationProps(ldm: Ldm, d: DomainConfig): Record<string, string> {
  const v = ldm.migrations.view(d.name);
  if (!v) return {};
  return { operation: 'migration', progress: `${v.progress}%`, [v.role === 'source' ? 'target' : 'source']: v.peer, error: v.error ? 'yes' : 'no' };
}

/** The variables that set a guest's workload (agent/hypervisor/variables.ts). */
const WORKLOAD_VARIABLES = new Set(['sim-working-set', 'sim-dirty-rate', 'sim-fill']);

/**
 * A running guest's simulated workload (contract.md "Simulated guests"): its
 * phase and the bytes of its working set filled. Shown for a guest whose
 * variables set its workload: on the defaults the fill takes a few hundred
 * milliseconds after a start, and a listing that changes with the clock would
 * make the captured examples (test/examples-agent.test.ts) differ run to run.
 */
function workloadProps(ldm: Ldm, d: DomainConfig): Record<string, string> {
  const simulated = d.variables.some(([k]) => WORKLOAD_VARIABLES.has(k));
  const w = simulated && d.state === 'active' && d.name !== PRIMARY ? ldm.guestWorkload(d.name) : undefined;
  return w ? { 'sim-workload': w.phase, 'sim-filled': String(w.filledBytes) } : {};
}

function cpuItem(d: DomainConfig): Item {
  return item('cpu', d.wholeCores > 0 ? { wcore: String(d.wholeCores) } : {}, { AllocationUnits: String(d.vcpus) });
}

function deviceItems(d: DomainConfig): Item[] {
  const out: Item[] = [];
  for (const io of d.io) out.push(item('physio_device', { name: io }));
  for (const v of d.vdisks) {
    out.push(item('disk', { vdisk_name: v.name, vol_name: v.volume, service_name: v.service, ...(v.timeout !== undefined ? { timeout: String(v.timeout) } : {}) }));
  }
  for (const n of d.vnets) {
    const extra: Record<string, string> = {};
    if (n.pvid !== undefined) extra['pvid'] = String(n.pvid);
    if (n.vid) extra['vid'] = n.vid;
    if (n.mode) extra['mode'] = n.mode;
    if (n.linkprop) extra['linkprop'] = n.linkprop;
    out.push(item('network', { vnet_name: n.name, service_name: n.service, ...extra }, { Address: n.mac }));
  }
  return out;
}

function consoleItem(d: DomainConfig, bound: boolean): Item | undefined {
  const props: Record<string, string> = {};
  const port = bound ? d.bindings?.consolePort : d.console.port;
  const service = bound ? (d.bindings?.consoleService ?? d.console.service) : d.console.service;
  if (port !== undefined) props['port'] = String(port);
  if (service) props['service_name'] = service;
  if (d.console.group) props['group'] = d.console.group;
  if (d.console.log !== undefined) props['enable-log'] = String(d.console.log);
  return Object.keys(props).length > 0 ? item('console', props) : undefined;
}

const varItems = (d: DomainConfig) => d.variables.map(([name, value]) => item('var', { name, value }));

const domainItems = (ldm: Ldm, d: DomainConfig, bound: boolean): Item[] => {
  const list: (Item | undefined)[] = [
    ldomInfo(ldm, d, bound),
    // Only what was given: a zero would not read back as add-domain input.
    d.vcpus > 0 ? cpuItem(d) : undefined,
    d.mau > 0 ? item('mau', {}, { AllocationUnits: String(d.mau) }) : undefined,
    d.memory > 0 ? item('memory', {}, { AllocationUnits: formatSize(d.memory) }) : undefined,
    ...deviceItems(d),
    consoleItem(d, bound),
    ...varItems(d),
  ];
  return list.filter((x): x is Item => x !== undefined);
};

const listDomain: Listing = (ldm, domains) => ({
  contents: domains.map((d) => ({ id: d.name, sections: [section(domainItems(ldm, d, true))] })),
  sections: [],
});

const listConstraints: Listing = (ldm, domains) => ({
  contents: domains.map((d) => ({ id: d.name, sections: [section(domainItems(ldm, d, false))] })),
  sections: [],
});

const listBindings: Listing = (ldm, domains) => ({
  contents: domains.map((d) => {
    const items = domainItems(ldm, d, true);
    const b = d.bindings;
    if (b) {
      const cpu = items.find((i) => i.type === 'cpu')!;
      cpu.bindings = b.strands.map((pid, vid) => item('cpu', { vid: String(vid), pid: String(pid), cid: String(coreOf(ldm.machine, pid)) }));
      const mem = items.find((i) => i.type === 'memory')!;
      mem.bindings = b.memory.map((blk) => item('memory', { ra: hex(blk.ra), pa: hex(blk.pa), size: formatSize(blk.size) }));
      const mau = items.find((i) => i.type === 'mau');
      if (mau) mau.bindings = b.mau.map((id) => item('mau', { id: String(id), cid: String(Math.floor(id / Math.max(1, ldm.machine.cpu.cryptoUnitsPerCore))) }));
      for (const disk of items.filter((i) => i.type === 'disk')) {
        const v = d.vdisks.find((x) => x.name === disk.props.get('vdisk_name'))!;
        const vol = ldm.snapshot.vds.find((s) => s.name === v.service)?.volumes.find((x) => x.name === v.volume);
        disk.bindings = [item('disk', { id: String(v.id), device: `disk@${v.id}`, backend: vol?.blockDev ?? '', server: ldm.snapshot.vds.find((s) => s.name === v.service)?.domain ?? '' })];
      }
      for (const net of items.filter((i) => i.type === 'network')) {
        const n = d.vnets.find((x) => x.name === net.props.get('vnet_name'))!;
        const vsw = ldm.snapshot.vsw.find((w) => w.name === n.service);
        net.bindings = [item('network', { id: String(n.id), device: `network@${n.id}`, peer: vsw ? `${vsw.name}@${vsw.domain}` : n.service, mtu: String(vsw?.mtu ?? 1500) })];
      }
    }
    return { id: d.name, sections: [section(items)] };
  }),
  sections: [],
});

const listVariables: Listing = (_ldm, domains) => ({
  contents: domains.map((d) => ({ id: d.name, sections: [section(varItems(d))] })),
  sections: [],
});

const listServices: Listing = (ldm, domains) => {
  const s = ldm.snapshot;
  return {
    contents: domains
      .map((d) => {
        const items: Item[] = [];
        for (const vds of s.vds.filter((v) => v.domain === d.name)) {
          items.push(item('vds', { service_name: vds.name }));
          for (const vol of vds.volumes) {
            const p: Record<string, string> = { vol_name: vol.name, service_name: vds.name, block_dev: vol.blockDev };
            if (vol.options.length > 0) p['vol_opts'] = vol.options.join(',');
            if (vol.mpgroup) p['mpgroup'] = vol.mpgroup;
            items.push(item('vds_volume', p));
          }
        }
        for (const vsw of s.vsw.filter((v) => v.domain === d.name)) {
          const p: Record<string, string> = { service_name: vsw.name, id: String(vsw.id) };
          if (vsw.netDev) p['dev_path'] = vsw.netDev;
          if (vsw.mode) p['mode'] = vsw.mode;
          if (vsw.pvid !== undefined) p['pvid'] = String(vsw.pvid);
          if (vsw.vid) p['vid'] = vsw.vid;
          if (vsw.mtu !== undefined) p['mtu'] = String(vsw.mtu);
          if (vsw.linkprop) p['linkprop'] = vsw.linkprop;
          if (vsw.interVnetLink) p['inter_vnet_link'] = vsw.interVnetLink;
          items.push(item('vsw', p, { Address: vsw.mac }));
        }
        for (const vcc of s.vcc.filter((v) => v.domain === d.name)) {
          items.push(item('vcc', { service_name: vcc.name, min_port: String(vcc.minPort), max_port: String(vcc.maxPort) }));
        }
        return { id: d.name, sections: [section(items)] };
      })
      .filter((c) => c.sections[0]!.items.length > 0),
    sections: [],
  };
};

const listDevices: Listing = (ldm) => {
  const s = ldm.snapshot;
  const strands = freeStrands(ldm.machine, s);
  const usedMau = new Set(s.domains.flatMap((d) => d.bindings?.mau ?? []));
  const allMau = ldm.machine.cpu.cores * ldm.machine.cpu.cryptoUnitsPerCore;
  const freeMau = Array.from({ length: allMau }, (_, i) => i).filter((i) => !usedMau.has(i));
  const memory = freeMemory(ldm.machine, s);
  const io = ldm.machine.io.filter((dev) => !s.domains.some((d) => d.io.includes(dev.name)));
  const cpu = item('cpu', {}, { AllocationUnits: String(strands.length) });
  cpu.bindings = strands.map((pid) => item('cpu', { pid: String(pid), cid: String(coreOf(ldm.machine, pid)) }));
  const mau = item('mau', {}, { AllocationUnits: String(freeMau.length) });
  mau.bindings = freeMau.map((id) => item('mau', { id: String(id) }));
  const mem = item('memory', {}, { AllocationUnits: formatSize(memory.reduce((a, r) => a + r.size, 0)) });
  mem.bindings = memory.map((r) => item('memory', { pa: hex(r.pa), size: formatSize(r.size) }));
  return { contents: [], sections: [section([cpu, mau, mem, ...io.map((d) => item('physio_device', { name: d.name, kind: d.kind }))])] };
};

const listSpconfig: Listing = (ldm) => {
  const s = ldm.snapshot;
  const names = [FACTORY_DEFAULT, ...s.spconfigs.map((c) => c.name)];
  return {
    contents: [],
    sections: [section(names.map((name) => item('spconfig', { spconfig_name: name, ...(name === s.nextSpconfig ? { spconfig_status: 'current' } : {}) })))],
  };
};

/**
 * list-io (3.5): one physio_device item per bus, endpoint, physical and
 * virtual function, with `ldm list-io`'s columns as properties (name, type
 * BUS/PCIE/PF/VF, bus, domain, status) and, for functions, their class and
 * settings. Buses are named by pseudonym (pci_0), their device path in `path`.
 */
const listIo: Listing = (ldm) => ({
  contents: [],
  sections: [
    section(
      ioRows(ldm.machine, ldm.snapshot).map((r) =>
        item('physio_device', { name: r.name, type: r.type, bus: r.bus, domain: r.domain, status: r.status, ...(r.path ? { path: r.path } : {}), ...Object.fromEntries(r.props) }),
      ),
    ),
  ],
});

const LISTINGS: Record<string, Listing> = {
  'list-domain': listDomain,
  'list-bindings': listBindings,
  'list-constraints': listConstraints,
  'list-devices': listDevices,
  'list-io': listIo,
  'list-services': listServices,
  'list-variable': listVariables,
  'list-spconfig': listSpconfig,
};

export const LISTING_ACTIONS = Object.keys(LISTINGS);

/** Listings of the whole machine: a Content in the request names nothing for them. */
const MACHINE_WIDE = new Set(['list-devices', 'list-spconfig', 'list-io']);

/**
 * Answer one object of a listing (protocol.md section 3: each <data> gets its
 * own <data> back). The object lists the domains its Contents name, or every
 * domain when it names none. A name that does not exist fails the object with
 * a message naming it; the domains that do exist are still listed.
 */
export function runListing(ldm: Ldm, action: string, data: Data): void {
  const listing = LISTINGS[action]!;
  const ids = MACHINE_WIDE.has(action) ? [] : [...new Set(data.envelope?.contents.map((c) => c.id) ?? [])];
  const unknown = ids.filter((n) => !ldm.domain(n));
  const known = ids.filter((n) => ldm.domain(n));
  if (ids.length > 0 && known.length === 0) {
    // Nothing to list: the object is echoed as asked, with its failure.
    data.response = failure(...unknown.map(refusalMessages.noSuchDomain));
    return;
  }
  data.envelope = listing(ldm, ids.length > 0 ? known.map((n) => ldm.domain(n)!) : ldm.snapshot.domains);
  data.response = unknown.length > 0 ? failure(...unknown.map(refusalMessages.noSuchDomain)) : success();
}
