/**
 * The handlers of the actions that change domains and services: each reads
 * its objects (<data>), asks the model, and answers each object. The model
 * refuses with Oracle-worded texts; a refusal fails that object only.
 */
import { objectMessages, refusalMessages } from '../messages.ts';
import { PRIMARY, type DomainConstraints, type DomainProps, type Ldm } from '../model/ldm.ts';
import { formatSize } from '../model/sizes.ts';
import { optionTokens, type Command, type Data } from '../xml/document.ts';
import { boolean, contents, domainOf, firstItem, integer, items, ObjectError, prop, rasd, required, size, theItem, units, unread, uuidOf } from './objects.ts';

/** What a handler of one object returns: nothing, or a warning for the 3.6 second response. */
export type ObjectResult = void | string | undefined;
export type ObjectHandler = (data: Data, cmd: Command) => Promise<ObjectResult>;

/**
 * A domain's properties from its ldom_info item (agent/model/properties.ts
 * lists them). The uuid comes as the 3.x `<uuid>` element or as a property;
 * the MAC address as rasd:Address or as `mac-addr` (the CLI's name).
 */
const props = (data: Data): DomainProps => {
  const info = firstItem(data, 'ldom_info');
  if (!info) return {};
  const element = uuidOf(info);
  const property = prop(info, 'uuid');
  if (element !== undefined && property !== undefined && element.toLowerCase() !== property.toLowerCase()) {
    throw new ObjectError(objectMessages.uuidConflict(element, property));
  }
  return {
    uuid: element ?? property,
    failurePolicy: prop(info, 'failure-policy'),
    master: prop(info, 'master'),
    hostid: prop(info, 'hostid'),
    mac: rasd(info, 'Address') ?? prop(info, 'mac-addr'),
    cpuArch: prop(info, 'cpu-arch'),
    perfCounters: prop(info, 'perf-counters'),
    extendedMapinSpace: prop(info, 'extended-mapin-space'),
    rcAddPolicy: prop(info, 'rc-add-policy'),
    bootPolicy: prop(info, 'boot-policy'),
    shutdownGroup: prop(info, 'shutdown-group'),
    maxCores: prop(info, 'max-cores'),
  };
};

/** The constraints an add-domain object carries besides ldom_info (list-constraints' own shape). */
function constraints(data: Data): DomainConstraints {
  const c: DomainConstraints = {};
  const cpu = firstItem(data, 'cpu');
  if (cpu) {
    const wcore = integer(cpu, 'wcore', prop(cpu, 'wcore'), 0);
    if (wcore) {
      // With whole cores, the strand count listings give beside them follows from the cores: read, not used.
      rasd(cpu, 'AllocationUnits');
      c.wholeCores = wcore;
    } else c.vcpus = units(cpu);
  }
  const mem = firstItem(data, 'memory');
  if (mem) c.memory = size(mem);
  const mau = firstItem(data, 'mau');
  if (mau) c.mau = units(mau);
  c.io = items(data, 'physio_device').map((i) => required(i, 'name'));
  c.vdisks = items(data, 'disk').map((i) => ({
    name: required(i, 'vdisk_name'),
    volume: required(i, 'vol_name'),
    service: required(i, 'service_name'),
    timeout: integer(i, 'timeout', prop(i, 'timeout')),
  }));
  c.vnets = items(data, 'network').map((i) => {
    const o = vnetOptions(i, true);
    return { ...o, service: o.service! };
  });
  c.variables = items(data, 'var').map((i) => [required(i, 'name'), prop(i, 'value') ?? '']);
  const cons = firstItem(data, 'console');
  if (cons) c.console = consoleOptions(cons);
  return c;
}

function vnetOptions(i: ReturnType<typeof theItem>, needService: boolean) {
  return {
    name: required(i, 'vnet_name'),
    service: needService ? required(i, 'service_name') : prop(i, 'service_name'),
    mac: rasd(i, 'Address') ?? prop(i, 'mac-addr'),
    pvid: integer(i, 'pvid', prop(i, 'pvid'), 1),
    vid: prop(i, 'vid'),
    mode: prop(i, 'mode'),
    linkprop: prop(i, 'linkprop'),
  };
}

function consoleOptions(i: ReturnType<typeof theItem>) {
  return {
    port: integer(i, 'port', prop(i, 'port'), 1),
    service: prop(i, 'service_name'),
    group: prop(i, 'group'),
    log: boolean(i, 'enable-log'),
  };
}

function vswOptions(i: ReturnType<typeof theItem>) {
  const mtu = integer(i, 'mtu', prop(i, 'mtu'), 576);
  return {
    mac: rasd(i, 'Address') ?? prop(i, 'mac-addr'),
    netDev: prop(i, 'dev_path') ?? prop(i, 'net-dev'),
    mode: prop(i, 'mode'),
    pvid: integer(i, 'pvid', prop(i, 'pvid'), 1),
    vid: prop(i, 'vid'),
    mtu,
    linkprop: prop(i, 'linkprop'),
    interVnetLink: prop(i, 'inter_vnet_link'),
  };
}

/**
 * `-n COUNT` or `-n max` of create-vf and destroy-vf (ldm(1M)'s spelling, in
 * <options>); undefined without it. Any other option is refused by name.
 */
function vfCount(action: string, cmd: Command): number | 'max' | undefined {
  const tokens = optionTokens(cmd);
  let count: number | 'max' | undefined;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== '-n') throw new ObjectError(objectMessages.unknownOption(action, tokens[i]!));
    const value = tokens[++i] ?? '';
    if (value === 'max') count = 'max';
    else if (/^[1-9]\d{0,5}$/.test(value)) count = Number(value);
    else throw new ObjectError(objectMessages.badCount(action, value));
  }
  return count;
}

/**
 * The properties a physio_device item sets (set-io, create-vf): every
 * GenericProperty but the ones naming the device, and rasd:Address as the
 * VF's mac-addr. The model refuses a key it does not know, by name.
 */
function ioSettings(i: ReturnType<typeof theItem>, naming: readonly string[]): [string, string][] {
  const settings: [string, string][] = [...i.props.keys()].filter((k) => !naming.includes(k)).map((k) => [k, prop(i, k)!]);
  const address = rasd(i, 'Address');
  if (address !== undefined) settings.push(['mac-addr', address]);
  return settings;
}

const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** Service objects name their domain with a Content; under the bare Envelope they belong to the primary. */
const serviceDomain = (data: Data) => domainOf(data, PRIMARY);

export function objectHandlers(ldm: Ldm): Record<string, ObjectHandler> {
  const counted = (kind: 'vcpu' | 'mau', action: 'add' | 'set' | 'remove'): ObjectHandler => async (data) => {
    const name = domainOf(data);
    if (kind === 'mau') return void (await ldm.setMau(name, action, units(theItem(data, 'mau'))));
    const cpu = theItem(data, 'cpu');
    const wcore = integer(cpu, 'wcore', prop(cpu, 'wcore'), 0);
    if (wcore) rasd(cpu, 'AllocationUnits'); // the strands of the cores, as in c.wholeCores above
    await ldm.setVcpus(name, action, wcore ? wcore : units(cpu), wcore !== undefined && wcore > 0);
  };
  const memory = (action: 'add' | 'set' | 'remove'): ObjectHandler => async (data) => {
    const name = domainOf(data);
    const asked = size(theItem(data, 'memory'));
    const r = await ldm.setMemory(name, action, asked);
    const notes = [];
    if (r.rounded !== asked) notes.push(objectMessages.memoryRounded(formatSize(asked), formatSize(r.rounded)));
    if (r.delayed) notes.push(objectMessages.delayedReconf(name));
    return notes.join(' ') || undefined;
  };
  const variables = (action: 'add' | 'set' | 'remove'): ObjectHandler => async (data) => {
    const name = domainOf(data);
    const vars = items(data, 'var');
    if (vars.length === 0) throw new ObjectError(objectMessages.noItem('var'));
    await ldm.setVariables(name, action, vars.map((v) => [required(v, 'name'), action === 'remove' ? '' : (prop(v, 'value') ?? '')]));
  };
  const io = (action: 'add' | 'remove'): ObjectHandler => async (data) => {
    const r = await ldm.setIo(domainOf(data), action, required(theItem(data, 'physio_device'), 'name'));
    return r.delayed ? objectMessages.delayedReconf(PRIMARY) : undefined;
  };
  const spconfigName = (data: Data) => required(theItem(data, 'spconfig'), 'spconfig_name');
  /** The device a physio_device item of create-vf/destroy-vf names: `iov_pf_name` (the guide's key for the physical function) or `name`. */
  const functionName = (i: ReturnType<typeof theItem>) => prop(i, 'iov_pf_name') ?? required(i, 'name');

  const handlers: Record<string, ObjectHandler> = {
    'add-domain': async (data) => {
      if (contents(data).length === 0) throw new ObjectError(objectMessages.noDomain());
      const one = (c: ReturnType<typeof contents>[number]): Data => ({ ...data, envelope: { contents: [c], sections: [] } });
      await ldm.addDomains(contents(data).map((c) => ({ name: c.id, props: props(one(c)), constraints: constraints(one(c)) })));
    },
    'set-domain': async (data) => void (await ldm.setDomain(domainOf(data), props(data))),
    'remove-domain': async (data) => void (await ldm.removeDomain(contents(data).map((c) => c.id))),
    'bind-domain': async (data) => void (await ldm.bindDomain(domainOf(data))),
    'unbind-domain': async (data) => void (await ldm.unbindDomain(domainOf(data))),
    'start-domain': async (data) => void (await ldm.startDomain(domainOf(data))),
    'stop-domain': async (data, cmd) => void (await ldm.stopDomain(domainOf(data), optionTokens(cmd).includes('-f'))),
    'add-vcpu': counted('vcpu', 'add'),
    'set-vcpu': counted('vcpu', 'set'),
    'remove-vcpu': counted('vcpu', 'remove'),
    'add-mau': counted('mau', 'add'),
    'set-mau': counted('mau', 'set'),
    'remove-mau': counted('mau', 'remove'),
    'add-memory': memory('add'),
    'set-memory': memory('set'),
    'remove-memory': memory('remove'),
    'remove-reconf': async (data) => void (await ldm.removeReconf(domainOf(data))),
    'add-io': io('add'),
    'remove-io': io('remove'),
    'add-vdiskserver': async (data) => void (await ldm.addVds(required(theItem(data, 'vds'), 'service_name'), serviceDomain(data))),
    'remove-vdiskserver': async (data) => void (await ldm.removeVds(required(theItem(data, 'vds'), 'service_name'))),
    'add-vdiskserverdevice': async (data) => {
      const i = theItem(data, 'vds_volume');
      const opts = (prop(i, 'vol_opts') ?? '').split(',').map((o) => o.trim()).filter(Boolean);
      await ldm.addVolume(required(i, 'service_name'), required(i, 'vol_name'), required(i, 'block_dev'), opts, prop(i, 'mpgroup'));
    },
    'remove-vdiskserverdevice': async (data) => {
      const i = theItem(data, 'vds_volume');
      await ldm.removeVolume(required(i, 'service_name'), required(i, 'vol_name'));
    },
    'add-vdisk': async (data) => {
      const i = theItem(data, 'disk');
      await ldm.addVdisk(domainOf(data), required(i, 'vdisk_name'), required(i, 'vol_name'), required(i, 'service_name'), integer(i, 'timeout', prop(i, 'timeout')));
    },
    'remove-vdisk': async (data) => void (await ldm.removeVdisk(domainOf(data), required(theItem(data, 'disk'), 'vdisk_name'))),
    'add-vswitch': async (data) => {
      const i = theItem(data, 'vsw');
      await ldm.addVsw(required(i, 'service_name'), serviceDomain(data), defined(vswOptions(i)));
    },
    'set-vswitch': async (data) => {
      const i = theItem(data, 'vsw');
      await ldm.setVsw(required(i, 'service_name'), defined(vswOptions(i)));
    },
    'remove-vswitch': async (data) => void (await ldm.removeVsw(required(theItem(data, 'vsw'), 'service_name'))),
    'add-vnet': async (data) => {
      const { name, service, ...opts } = vnetOptions(theItem(data, 'network'), true);
      await ldm.addVnet(domainOf(data), name, service!, opts);
    },
    'set-vnet': async (data) => {
      const { name, ...opts } = vnetOptions(theItem(data, 'network'), false);
      await ldm.setVnet(domainOf(data), name, opts);
    },
    'remove-vnet': async (data) => void (await ldm.removeVnet(domainOf(data), required(theItem(data, 'network'), 'vnet_name'))),
    'add-vconscon': async (data) => {
      const i = theItem(data, 'vcc');
      const min = integer(i, 'min_port', required(i, 'min_port'), 1)!;
      const max = integer(i, 'max_port', required(i, 'max_port'), 1)!;
      await ldm.addVcc(required(i, 'service_name'), serviceDomain(data), min, max);
    },
    'set-vconscon': async (data) => {
      const i = theItem(data, 'vcc');
      await ldm.setVcc(required(i, 'service_name'), integer(i, 'min_port', prop(i, 'min_port'), 1), integer(i, 'max_port', prop(i, 'max_port'), 1));
    },
    'remove-vconscon': async (data) => void (await ldm.removeVcc(required(theItem(data, 'vcc'), 'service_name'))),
    'set-vconsole': async (data) => void (await ldm.setVconsole(domainOf(data), defined(consoleOptions(theItem(data, 'console'))))),
    'add-variable': variables('add'),
    'set-variable': variables('set'),
    'remove-variable': variables('remove'),
    'add-spconfig': async (data) => void (await ldm.addSpconfig(spconfigName(data))),
    'set-spconfig': async (data) => void (await ldm.setSpconfig(spconfigName(data))),
    'remove-spconfig': async (data) => void (await ldm.removeSpconfig(spconfigName(data))),
    'cancel-operation': async (data, cmd) => {
      const what = optionTokens(cmd)[0];
      const name = domainOf(data);
      if (what === 'reconf') return void (await ldm.removeReconf(name));
      if (!ldm.domain(name)) throw new ObjectError(refusalMessages.noSuchDomain(name));
      if (what === 'migration') throw new ObjectError(objectMessages.noMigration(name));
      if (what === 'memdr') throw new ObjectError(objectMessages.noMemdr(name));
      throw new ObjectError(objectMessages.cancelWhat(what));
    },
    // SR-IOV (3.2 examples): the device is named in a physio_device item, in a Section or a Content.
    'set-io': async (data) => {
      const i = theItem(data, 'physio_device');
      await ldm.setIoProps(required(i, 'name'), ioSettings(i, ['name']));
    },
    'create-vf': async (data, cmd) => {
      const count = vfCount('create-vf', cmd) ?? 1;
      const i = theItem(data, 'physio_device');
      const created = await ldm.createVf(functionName(i), count, ioSettings(i, ['name', 'iov_pf_name']));
      // The new names are otherwise only in list-io: the client is told them, as ldm(1M) prints them.
      return objectMessages.vfsCreated(created);
    },
    'destroy-vf': async (data, cmd) => {
      const count = vfCount('destroy-vf', cmd);
      const destroyed = await ldm.destroyVf(functionName(theItem(data, 'physio_device')), count);
      return objectMessages.vfsDestroyed(destroyed);
    },
  };

  // What a handler did not read of its object is warned about, never dropped in silence.
  return Object.fromEntries(
    Object.entries(handlers).map(([action, handler]) => [
      action,
      async (data: Data, cmd: Command) => {
        const note = await handler(data, cmd);
        return [...(note ? [note] : []), ...unread(data, action)].join('; ') || undefined;
      },
    ]),
  );
}
