/**
 * `ldm` subcommands that change domains and services, in Oracle's ldm(1M)
 * syntax: options first, then PROPERTY=VALUE pairs, then the operands
 * (`ldm add-vnet mac-addr=... vnet0 primary-vsw0 ldg1`).
 *
 * Each subcommand builds the request the agent's handlers read
 * (agent/manager/handlers.ts): one <data> per domain or object named, so the
 * agent answers each on its own. Like ldm, a success prints nothing; the
 * agent's failure texts go to stderr (exit 1), its warnings (the 3.6 second
 * object response) to stderr with exit 0. Bad usage prints the subcommand's
 * own usage line (exit 2).
 */
import { readFileSync } from 'node:fs';
import { ldmMessages as m } from '../../messages.ts';
import { readSize } from '../../model/sizes.ts';
import { decodeTree } from '../../xml/decode.ts';
import { item, type Data, type Item, type LdmDocument } from '../../xml/document.ts';
import { parseXml, type XmlElement } from '../../xml/tree.ts';
import { UsageError } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, type LdmContext } from './context.ts';

// ── Reading the arguments ────────────────────────────────────────────────

/** A subcommand's arguments, sorted by kind. */
interface Parsed {
  /** Flags given (`-f`), and value options with their value (`-i` -> FILE). */
  flags: Set<string>;
  values: Map<string, string>;
  /** PROPERTY=VALUE pairs, in order, by Oracle's key. */
  props: [string, string][];
  /** The same pairs by the request's key (Syntax.props). */
  mapped: Record<string, string>;
  operands: string[];
}

interface Syntax {
  /** Flags without a value (`-f`, `-a`, `--auto-adj`). */
  flags?: readonly string[];
  /** Options with a value (`-i FILE`). */
  values?: readonly string[];
  /**
   * PROPERTY=VALUE pairs: the keys taken (Oracle's spelling -> the key of the
   * request), or 'operands' where `NAME=VALUE` pairs are operands themselves
   * (variables).
   */
  props?: Readonly<Record<string, string>> | 'operands';
  /** How many operands: [min, max] (max Infinity for LDOM...). */
  operands: readonly [number, number];
}

function parseArgs(args: string[], syntax: Syntax): Parsed {
  const p: Parsed = { flags: new Set(), values: new Map(), props: [], mapped: {}, operands: [] };
  let onlyOperands = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!onlyOperands && a === '--') {
      onlyOperands = true;
    } else if (!onlyOperands && a.startsWith('-') && a.length > 1) {
      if (syntax.flags?.includes(a)) p.flags.add(a);
      else if (syntax.values?.includes(a)) {
        const v = args[++i];
        if (v === undefined || v === '') throw new UsageError(m.optionNeedsValue(a));
        p.values.set(a, v);
      } else throw new UsageError(m.unknownOption(a));
    } else if (a.includes('=') && syntax.props !== 'operands') {
      const eq = a.indexOf('=');
      const key = a.slice(0, eq);
      if (!syntax.props || !(key in syntax.props)) {
        throw new UsageError(syntax.props ? m.unknownProperty(key, Object.keys(syntax.props)) : m.takesNoProperties(key));
      }
      if (p.props.some(([k]) => k === key)) throw new UsageError(m.propertyTwice(key));
      p.props.push([key, a.slice(eq + 1)]);
      p.mapped[syntax.props[key]!] = a.slice(eq + 1);
    } else p.operands.push(a);
  }
  const [min, max] = syntax.operands;
  if (p.operands.length < min) throw new UsageError(m.missingOperands());
  if (p.operands.length > max) throw new UsageError(m.extraOperands(p.operands.slice(max)));
  return p;
}

const count = (text: string, what: string, min = 0): string => {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(m.notANumber(what, text));
  return String(Number(text));
};

const sizeArg = (text: string): string => {
  const r = readSize(text);
  // Too large for a number: the agent refuses it with its limit.
  if ('problem' in r && r.problem === 'syntax') throw new UsageError(m.notASize(text));
  return text;
};

/** VOLUME@SERVICE, as add-vdsdev, rm-vdsdev and add-vdisk name a volume. */
function volumeAt(text: string): { volume: string; service: string } {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new UsageError(m.notVolumeAtService(text));
  return { volume: text.slice(0, at), service: text.slice(at + 1) };
}

/** port-range=MIN-MAX of add-vcc and set-vcc. */
function portRange(text: string): { min_port: string; max_port: string } {
  const r = /^(\d+)-(\d+)$/.exec(text);
  if (!r) throw new UsageError(m.notPortRange(text));
  return { min_port: String(Number(r[1])), max_port: String(Number(r[2])) };
}

// ── Building requests ────────────────────────────────────────────────────

const SECTION = 'VirtualHardwareSection_Type';

/** An object naming a domain (a Content), with its items. */
const inDomain = (domain: string, ...items: Item[]): Data => ({
  version: '3.0',
  envelope: { contents: [{ id: domain, type: 'VirtualSystem_Type', sections: items.length > 0 ? [{ type: SECTION, items }] : [] }], sections: [] },
});

/** An object naming no domain: services and SP configurations are named by their items alone. */
const bare = (...items: Item[]): Data => ({ version: '3.0', envelope: { contents: [], sections: [{ type: SECTION, items }] } });

/** What a subcommand asks of the agent: an action, its options and its objects. */
interface Ask {
  action: string;
  options?: string[];
  data: Data[];
  /** `-a`: the objects are the domains list-domain shows that this picks (by name and state), one each. */
  pick?: (name: string, state: string) => boolean;
}

function requestDocument(ask: Ask): LdmDocument {
  return {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: ask.action, options: ask.options ?? [], arguments: [], data: ask.data }],
  };
}

/**
 * Print what the agent answered, as ldm does: failures and warnings on
 * stderr, one message a line. Returns the exit status: 1 when anything
 * failed, else 0. A command that failed as a whole (refused, unknown) is
 * told once, not again for each of its objects.
 */
export function reportResponse(ctx: LdmContext, doc: LdmDocument): number {
  let failed = doc.response?.status === 'failure';
  if (doc.commands.length === 0) {
    for (const msg of doc.response?.messages ?? []) ctx.err(msg);
  }
  for (const cmd of doc.commands) {
    if (cmd.response?.status === 'failure' && cmd.response.messages.length > 0) {
      for (const msg of cmd.response.messages) ctx.err(msg);
      failed = true;
      continue;
    }
    if (cmd.response?.status === 'failure') failed = true;
    for (const d of cmd.data) {
      if (d.response?.status === 'failure') {
        failed = true;
        if (d.response.messages.length === 0) ctx.err(m.failedWithoutReason(cmd.action ?? 'the command'));
        for (const msg of d.response.messages) ctx.err(msg);
      } else {
        for (const msg of d.warning?.messages ?? []) ctx.err(msg);
      }
    }
  }
  if (failed && doc.commands.length === 0 && (doc.response?.messages.length ?? 0) === 0) ctx.err(m.failedWithoutReason('the request'));
  return failed ? 1 : 0;
}

/** The domains of the machine with their state, from list-domain. */
async function domainStates(ctx: LdmContext): Promise<{ name: string; state: string }[]> {
  const doc = await ctx.request(requestDocument({ action: 'list-domain', data: [] }));
  const d = doc.commands[0]?.data[0];
  if (!d || d.response?.status === 'failure' || !d.envelope) {
    throw new CommandError(m.cannotList(d?.response?.messages.join('; ') || doc.response?.messages.join('; ') || ''));
  }
  return d.envelope.contents.map((c) => ({
    name: c.id,
    state: c.sections.flatMap((s) => s.items).find((i) => i.type.toLowerCase() === 'ldom_info')?.props.get('state') ?? '',
  }));
}

/**
 * The objects of list-constraints -x output (or any LDM_interface document
 * with domains in its <data>): Oracle's file puts <data> straight under the
 * root, a response document puts it in a <cmd>; both are read. Only the
 * Envelopes are kept: responses and problems are not sent back.
 */
function constraintsFile(file: string): Data[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CommandError(m.cannotRead(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
  }
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (err) {
    throw new CommandError(m.notConstraints(file, (err as Error).message));
  }
  const loose = root.children.filter((c) => c.local === 'data');
  if (loose.length > 0) {
    // Oracle's shape: the <data> objects become one command, so the document decoder reads them.
    const wrapper: XmlElement = { name: 'cmd', local: 'cmd', attrs: {}, children: loose, text: '', line: loose[0]!.line };
    root = { ...root, children: [...root.children.filter((c) => c.local !== 'data'), wrapper] };
  }
  let doc: LdmDocument;
  try {
    doc = decodeTree(root, 'response', { checkActions: false });
  } catch (err) {
    throw new CommandError(m.notConstraints(file, (err as Error).message));
  }
  const data: Data[] = [];
  for (const cmd of doc.commands) {
    for (const d of cmd.data) {
      if (d.problem) throw new CommandError(m.notConstraints(file, d.problem));
      if (d.envelope && d.envelope.contents.length > 0) data.push({ version: d.version, envelope: d.envelope });
    }
  }
  if (data.length === 0) throw new CommandError(m.notConstraints(file, m.noDomainsInFile()));
  return data;
}

// ── The subcommands ──────────────────────────────────────────────────────

interface Change {
  /** Oracle's names: the synopsis name first, then aliases. */
  names: readonly string[];
  usage: string;
  syntax: Syntax;
  /** What to ask (usage problems throw UsageError here, before anything is sent). */
  ask(p: Parsed): Ask;
}

/**
 * ldm(1M)'s short forms: `rm-` for `remove-`, and the short subjects
 * (`crypto` for `mau`, `mem` for `memory`, ...), in every combination;
 * `extra` adds the command aliases (`bind`, `start`, `create`, ...).
 */
const VERBS: Record<string, string[]> = { remove: ['rm'] };
const SUBJECTS: Record<string, string[]> = {
  domain: ['dom'],
  memory: ['mem'],
  mau: ['crypto'],
  variable: ['var'],
  spconfig: ['config'],
  vdiskserver: ['vds'],
  vdiskserverdevice: ['vdsdev'],
  vswitch: ['vsw'],
  vconscon: ['vcc'],
  vconsole: ['vcons'],
};

function names(primary: string, longName: string, ...extra: string[]): string[] {
  const dash = longName.indexOf('-');
  const verb = longName.slice(0, dash);
  const subject = longName.slice(dash + 1);
  const all = [primary];
  for (const v of [verb, ...(VERBS[verb] ?? [])]) {
    for (const s of [subject, ...(SUBJECTS[subject] ?? [])]) all.push(`${v}-${s}`);
  }
  return [...new Set([...all, ...extra])];
}

/** ldom_info properties of add-domain and set-domain (agent/model/properties.ts): the same keys in the request. */
const DOMAIN_KEYS = ['mac-addr', 'hostid', 'failure-policy', 'extended-mapin-space', 'master', 'max-cores', 'perf-counters', 'boot-policy', 'shutdown-group', 'rc-add-policy', 'cpu-arch'];
const same = (keys: string[]): Record<string, string> => Object.fromEntries(keys.map((k) => [k, k]));

/**
 * Keys ldm(1M) takes that the agent does not model (`id=`, `default-vlan-id=`)
 * are sent as they are: the agent names them in a warning rather than the
 * command refusing a valid Oracle command line.
 */
const VSW_KEYS = { 'mac-addr': 'mac-addr', 'net-dev': 'net-dev', mode: 'mode', pvid: 'pvid', vid: 'vid', mtu: 'mtu', linkprop: 'linkprop', 'inter-vnet-link': 'inter_vnet_link', 'default-vlan-id': 'default-vlan-id', id: 'id' };
const VNET_KEYS = { 'mac-addr': 'mac-addr', mode: 'mode', pvid: 'pvid', vid: 'vid', linkprop: 'linkprop', mtu: 'mtu', id: 'id' };

/** start-domain/stop-domain: -a or the domains named, not both. */
function domainsOrAll(p: Parsed): string[] | 'all' {
  if (p.flags.has('-a')) {
    if (p.operands.length > 0) throw new UsageError(m.allWithNames());
    return 'all';
  }
  if (p.operands.length === 0) throw new UsageError(m.missingOperands());
  return p.operands;
}

/** add-, set-, remove- of a counted resource: `[-c] NUMBER LDOM`. */
function counted(kind: 'vcpu' | 'core' | 'mau', verb: 'add' | 'set' | 'remove'): Change {
  const action = `${verb}-${kind === 'core' ? 'vcpu' : kind}`;
  const primary = `${verb}-${kind}`;
  return {
    names: names(primary, primary),
    usage: `${primary}${kind === 'vcpu' ? ' [-c]' : ''} NUMBER LDOM`,
    syntax: { flags: kind === 'vcpu' ? ['-c'] : [], operands: [2, 2] },
    ask: (p) => {
      const [n, domain] = p.operands as [string, string];
      const cores = kind === 'core' || p.flags.has('-c');
      // Whole cores are the cpu item's wcore (handlers.ts); a count of none would read as strands.
      const cpu = cores ? item('cpu', { wcore: count(n, 'NUMBER', 1) }) : item(kind === 'mau' ? 'mau' : 'cpu', {}, { AllocationUnits: count(n, 'NUMBER') });
      return { action, data: [inDomain(domain, cpu)] };
    },
  };
}

function memory(verb: 'add' | 'set' | 'remove'): Change {
  return {
    names: names(`${verb}-memory`, `${verb}-memory`),
    usage: `${verb}-memory [--auto-adj] SIZE[K|M|G] LDOM`,
    // The agent always aligns to its 256M unit and says so: --auto-adj asks for what it does anyway.
    syntax: { flags: ['--auto-adj'], operands: [2, 2] },
    ask: (p) => ({ action: `${verb}-memory`, data: [inDomain(p.operands[1]!, item('memory', {}, { AllocationUnits: sizeArg(p.operands[0]!) }))] }),
  };
}

function variables(verb: 'add' | 'set' | 'remove'): Change {
  const remove = verb === 'remove';
  return {
    names: names(`${verb}-variable`, `${verb}-variable`),
    usage: remove ? 'remove-variable NAME... LDOM' : `${verb}-variable NAME=[VALUE]... LDOM`,
    syntax: { props: 'operands', operands: [2, Infinity] },
    ask: (p) => {
      const domain = p.operands.at(-1)!;
      const vars = p.operands.slice(0, -1).map((a) => {
        const eq = a.indexOf('=');
        if (remove) {
          if (eq >= 0) throw new UsageError(m.variableNameOnly(a));
          return item('var', { name: a });
        }
        if (eq <= 0) throw new UsageError(m.variablePair(a));
        return item('var', { name: a.slice(0, eq), value: a.slice(eq + 1) });
      });
      return { action: `${verb}-variable`, data: [inDomain(domain, ...vars)] };
    },
  };
}

function spconfig(verb: 'add' | 'set' | 'remove'): Change {
  return {
    names: names(`${verb}-spconfig`, `${verb}-spconfig`),
    usage: `${verb}-spconfig CONFIG-NAME`,
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: `${verb}-spconfig`, data: [bare(item('spconfig', { spconfig_name: p.operands[0]! }))] }),
  };
}

const VERBS3 = ['add', 'set', 'remove'] as const;

const CHANGES: Change[] = [
  // Domains.
  {
    names: names('add-domain', 'add-domain', 'create'),
    usage: 'add-domain (-i FILE | [PROPERTY=VALUE...] LDOM...)',
    syntax: { values: ['-i'], props: { ...same(DOMAIN_KEYS), uuid: 'uuid' }, operands: [0, Infinity] },
    ask: (p) => {
      const file = p.values.get('-i');
      if (file !== undefined) {
        if (p.operands.length > 0 || p.props.length > 0) throw new UsageError(m.fileWithNames());
        return { action: 'add-domain', data: constraintsFile(file) };
      }
      if (p.operands.length === 0) throw new UsageError(m.missingOperands());
      const props = p.mapped;
      return { action: 'add-domain', data: p.operands.map((d) => inDomain(d, ...(p.props.length > 0 ? [item('ldom_info', props)] : []))) };
    },
  },
  {
    names: names('set-domain', 'set-domain', 'modify'),
    usage: 'set-domain PROPERTY=VALUE... LDOM',
    syntax: { props: same(DOMAIN_KEYS), operands: [1, 1] },
    ask: (p) => {
      if (p.props.length === 0) throw new UsageError(m.missingProperties(DOMAIN_KEYS));
      return { action: 'set-domain', data: [inDomain(p.operands[0]!, item('ldom_info', p.mapped))] };
    },
  },
  {
    names: names('remove-domain', 'remove-domain', 'destroy'),
    usage: 'remove-domain (-a | LDOM...)',
    syntax: { flags: ['-a'], operands: [0, Infinity] },
    ask: (p) => {
      const which = domainsOrAll(p);
      // -a is the agent's own (manager.ts): every domain but the primary, all or none.
      if (which === 'all') return { action: 'remove-domain', options: ['-a'], data: [{ version: '3.0' }] };
      return { action: 'remove-domain', data: which.map((d) => inDomain(d)) };
    },
  },
  {
    names: names('start-domain', 'start-domain', 'start'),
    usage: 'start-domain (-a | LDOM...)',
    syntax: { flags: ['-a'], operands: [0, Infinity] },
    ask: (p) => {
      const which = domainsOrAll(p);
      // -a: every bound domain (the primary is always active).
      if (which === 'all') return { action: 'start-domain', data: [], pick: (_name, state) => state === 'bound' };
      return { action: 'start-domain', data: which.map((d) => inDomain(d)) };
    },
  },
  {
    names: names('stop-domain', 'stop-domain', 'stop'),
    usage: 'stop-domain [-f | -q] (-a | LDOM...)',
    syntax: { flags: ['-a', '-f', '-q'], operands: [0, Infinity] },
    ask: (p) => {
      const which = domainsOrAll(p);
      // A quick stop (-q) ends the guest at once, as a forced one does: the agent's simulated guests have no shutdown to wait for.
      const options = p.flags.has('-f') || p.flags.has('-q') ? ['-f'] : [];
      // -a: every active domain but the control domain, which ldm never stops.
      if (which === 'all') return { action: 'stop-domain', options, data: [], pick: (name, state) => state === 'active' && name !== 'primary' };
      return { action: 'stop-domain', options, data: which.map((d) => inDomain(d)) };
    },
  },
  {
    names: names('bind-domain', 'bind-domain', 'bind'),
    usage: 'bind-domain LDOM',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'bind-domain', data: [inDomain(p.operands[0]!)] }),
  },
  {
    names: names('unbind-domain', 'unbind-domain', 'unbind'),
    usage: 'unbind-domain LDOM',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'unbind-domain', data: [inDomain(p.operands[0]!)] }),
  },
  {
    names: ['remove-reconf', 'rm-reconf'],
    usage: 'remove-reconf LDOM',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'remove-reconf', data: [inDomain(p.operands[0]!)] }),
  },
  // CPUs, whole cores, crypto units, memory.
  ...(['vcpu', 'core', 'mau'] as const).flatMap((kind) => VERBS3.map((verb) => counted(kind, verb))),
  ...VERBS3.map(memory),
  // Virtual disk service, volumes and disks.
  {
    names: names('add-vds', 'add-vdiskserver'),
    usage: 'add-vds SERVICE-NAME LDOM',
    syntax: { operands: [2, 2] },
    ask: (p) => ({ action: 'add-vdiskserver', data: [inDomain(p.operands[1]!, item('vds', { service_name: p.operands[0]! }))] }),
  },
  {
    names: names('remove-vds', 'remove-vdiskserver'),
    usage: 'remove-vds SERVICE-NAME',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'remove-vdiskserver', data: [bare(item('vds', { service_name: p.operands[0]! }))] }),
  },
  {
    names: names('add-vdsdev', 'add-vdiskserverdevice'),
    usage: 'add-vdsdev [-f] [-q] [-o OPTIONS] [options=ro,slice,excl] [mpgroup=GROUP] BACKEND VOLUME@SERVICE',
    // -f and -q skip the check of the backend; the agent has no backend to check.
    syntax: { flags: ['-f', '-q'], values: ['-o'], props: { options: 'vol_opts', mpgroup: 'mpgroup' }, operands: [2, 2] },
    ask: (p) => {
      const { volume, service } = volumeAt(p.operands[1]!);
      const props = p.mapped;
      const dashO = p.values.get('-o');
      if (dashO !== undefined) props['vol_opts'] = props['vol_opts'] ? `${props['vol_opts']},${dashO}` : dashO;
      return { action: 'add-vdiskserverdevice', data: [bare(item('vds_volume', { service_name: service, vol_name: volume, block_dev: p.operands[0]!, ...props }))] };
    },
  },
  {
    names: names('remove-vdsdev', 'remove-vdiskserverdevice'),
    usage: 'remove-vdsdev VOLUME@SERVICE',
    syntax: { operands: [1, 1] },
    ask: (p) => {
      const { volume, service } = volumeAt(p.operands[0]!);
      return { action: 'remove-vdiskserverdevice', data: [bare(item('vds_volume', { service_name: service, vol_name: volume }))] };
    },
  },
  {
    names: names('add-vdisk', 'add-vdisk'),
    usage: 'add-vdisk [timeout=SECONDS] [id=DISK-ID] DISK-NAME VOLUME@SERVICE LDOM',
    syntax: { props: { timeout: 'timeout', id: 'id' }, operands: [3, 3] },
    ask: (p) => {
      const [disk, at, domain] = p.operands as [string, string, string];
      const { volume, service } = volumeAt(at);
      const props = { vdisk_name: disk, vol_name: volume, service_name: service, ...p.mapped };
      return { action: 'add-vdisk', data: [inDomain(domain, item('disk', props))] };
    },
  },
  {
    names: names('remove-vdisk', 'remove-vdisk'),
    usage: 'remove-vdisk DISK-NAME LDOM',
    syntax: { operands: [2, 2] },
    ask: (p) => ({ action: 'remove-vdisk', data: [inDomain(p.operands[1]!, item('disk', { vdisk_name: p.operands[0]! }))] }),
  },
  // Virtual switches and networks.
  {
    names: names('add-vsw', 'add-vswitch'),
    usage: 'add-vsw [mac-addr=MAC] [net-dev=DEVICE] [mode=sc] [pvid=ID] [vid=ID,...] [mtu=SIZE] [linkprop=phys-state] [inter-vnet-link=on|off] VSWITCH-NAME LDOM',
    syntax: { props: VSW_KEYS, operands: [2, 2] },
    ask: (p) => ({ action: 'add-vswitch', data: [inDomain(p.operands[1]!, item('vsw', { service_name: p.operands[0]!, ...p.mapped }))] }),
  },
  {
    names: names('set-vsw', 'set-vswitch'),
    usage: 'set-vsw [mac-addr=MAC] [net-dev=DEVICE] [mode=sc] [pvid=ID] [vid=ID,...] [mtu=SIZE] [linkprop=phys-state] [inter-vnet-link=on|off] VSWITCH-NAME',
    syntax: { props: VSW_KEYS, operands: [1, 1] },
    ask: (p) => ({ action: 'set-vswitch', data: [bare(item('vsw', { service_name: p.operands[0]!, ...p.mapped }))] }),
  },
  {
    names: names('remove-vsw', 'remove-vswitch'),
    usage: 'remove-vsw VSWITCH-NAME',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'remove-vswitch', data: [bare(item('vsw', { service_name: p.operands[0]! }))] }),
  },
  {
    names: names('add-vnet', 'add-vnet'),
    usage: 'add-vnet [mac-addr=MAC] [mode=hybrid] [pvid=ID] [vid=ID,...] [linkprop=phys-state] [mtu=SIZE] [id=NETWORK-ID] IF-NAME VSWITCH-NAME LDOM',
    syntax: { props: VNET_KEYS, operands: [3, 3] },
    ask: (p) => {
      const [vnet, vsw, domain] = p.operands as [string, string, string];
      return { action: 'add-vnet', data: [inDomain(domain, item('network', { vnet_name: vnet, service_name: vsw, ...p.mapped }))] };
    },
  },
  {
    names: names('set-vnet', 'set-vnet'),
    usage: 'set-vnet [mac-addr=MAC] [vswitch=VSWITCH-NAME] [mode=hybrid] [pvid=ID] [vid=ID,...] [linkprop=phys-state] [mtu=SIZE] IF-NAME LDOM',
    syntax: { props: { ...VNET_KEYS, vswitch: 'service_name' }, operands: [2, 2] },
    ask: (p) => ({
      action: 'set-vnet',
      data: [inDomain(p.operands[1]!, item('network', { vnet_name: p.operands[0]!, ...p.mapped }))],
    }),
  },
  {
    names: names('remove-vnet', 'remove-vnet'),
    usage: 'remove-vnet IF-NAME LDOM',
    syntax: { operands: [2, 2] },
    ask: (p) => ({ action: 'remove-vnet', data: [inDomain(p.operands[1]!, item('network', { vnet_name: p.operands[0]! }))] }),
  },
  // Virtual consoles.
  {
    names: names('add-vcc', 'add-vconscon'),
    usage: 'add-vcc port-range=MIN-MAX VCC-NAME LDOM',
    syntax: { props: { 'port-range': 'port-range' }, operands: [2, 2] },
    ask: (p) => {
      const range = p.props.find(([k]) => k === 'port-range');
      if (!range) throw new UsageError(m.missingProperties(['port-range']));
      return { action: 'add-vconscon', data: [inDomain(p.operands[1]!, item('vcc', { service_name: p.operands[0]!, ...portRange(range[1]) }))] };
    },
  },
  {
    names: names('set-vcc', 'set-vconscon'),
    usage: 'set-vcc port-range=MIN-MAX VCC-NAME',
    syntax: { props: { 'port-range': 'port-range' }, operands: [1, 1] },
    ask: (p) => {
      const range = p.props.find(([k]) => k === 'port-range');
      if (!range) throw new UsageError(m.missingProperties(['port-range']));
      return { action: 'set-vconscon', data: [bare(item('vcc', { service_name: p.operands[0]!, ...portRange(range[1]) }))] };
    },
  },
  {
    names: names('remove-vcc', 'remove-vconscon'),
    usage: 'remove-vcc VCC-NAME',
    syntax: { operands: [1, 1] },
    ask: (p) => ({ action: 'remove-vconscon', data: [bare(item('vcc', { service_name: p.operands[0]! }))] }),
  },
  {
    names: names('set-vcons', 'set-vconsole'),
    usage: 'set-vcons [port=PORT] [group=GROUP] [service=VCC-NAME] [log=on|off] LDOM',
    syntax: { props: { port: 'port', group: 'group', service: 'service_name', log: 'enable-log' }, operands: [1, 1] },
    ask: (p) => {
      if (p.props.length === 0) throw new UsageError(m.missingProperties(['port', 'group', 'service', 'log']));
      // ldm(1M)'s `port=` (back to any free port) has no counterpart in the agent: a port is a number here.
      if (p.mapped['port'] !== undefined) p.mapped['port'] = count(p.mapped['port'], 'port', 1);
      return { action: 'set-vconsole', data: [inDomain(p.operands[0]!, item('console', p.mapped))] };
    },
  },
  // Variables and SP configurations.
  ...VERBS3.map(variables),
  ...VERBS3.map(spconfig),
];

/** A change as a subcommand: bad usage (UsageError) and `-h` are main.ts's, with this subcommand's usage line. */
function command(c: Change): LdmCommand {
  return {
    names: c.names,
    usage: c.usage,
    async run(ctx, args) {
      const ask: Ask = c.ask(parseArgs(args, c.syntax));
      if (ask.pick) {
        const pick = ask.pick;
        ask.data = (await domainStates(ctx)).filter((d) => pick(d.name, d.state)).map((d) => inDomain(d.name));
        // Nothing to start or stop: done, as ldm is.
        if (ask.data.length === 0) return 0;
      }
      return reportResponse(ctx, await ctx.request(requestDocument(ask)));
    },
  };
}

export const commands: LdmCommand[] = CHANGES.map(command);
