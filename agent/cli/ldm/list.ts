/**
 * `ldm` listings: list-domain (`list`, `ls`), list-bindings, list-constraints,
 * list-devices, list-services, list-variable, list-spconfig. Each sends one
 * document (a listing, plus the listings its text needs: list-io for bus
 * pseudonyms, list-services for whose services a domain uses), prints what
 * the agent listed, and prints the agent's failure texts on stderr with exit
 * status 1 (a domain that does not exist: the others are still listed).
 */
import { ldmMessages as m } from '../../messages.ts';
import type { Command, Content, Data, LdmDocument, Section } from '../../xml/document.ts';
import { encodeDocument } from '../../xml/encode.ts';
import { UsageError } from '../io.ts';
import type { LdmCommand } from './command.ts';
import type { LdmContext } from './context.ts';
import {
  constraintRecords,
  constraintSections,
  DOMAIN_RULE,
  domainLine,
  emptyContext,
  longRecords,
  longSections,
  O_ALIASES,
  O_FORMATS,
  oRecords,
  oSections,
  TABLE_HEADER,
  tableRow,
  type LongContext,
  type OFormat,
} from './format-domain.ts';
import { DEVICE_ALIASES, DEVICE_KINDS, devicesRecords, devicesText, machineView, spconfigLines, servicesRecords, servicesText, type DeviceKind } from './format-machine.ts';
import { firstItem, itemsOf, PARSEABLE_VERSION } from './format.ts';

// ── arguments ──────────────────────────────────────────────────────────────

interface ListArgs {
  flags: Set<string>;
  /** Values of the options that take one (`-o`), in order. */
  values: Map<string, string[]>;
  operands: string[];
}

/**
 * Oracle's short options: flags may be grouped (`-lp`), a value follows its
 * option or is attached (`-o status`, `-ostatus`); `--` ends the options.
 */
function parseList(args: string[], flags: string, valued: string): ListArgs {
  const out: ListArgs = { flags: new Set(), values: new Map(), operands: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.operands.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a.length < 2) {
      out.operands.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const ch = a[j]!;
      if (flags.includes(ch)) out.flags.add(ch);
      else if (valued.includes(ch)) {
        const value = j + 1 < a.length ? a.slice(j + 1) : args[++i];
        if (value === undefined || value === '') throw new UsageError(m.optionNeedsValue(`-${ch}`));
        out.values.set(ch, [...(out.values.get(ch) ?? []), value]);
        break;
      } else throw new UsageError(m.unknownOption(a.length === 2 ? a : `-${ch} (in ${a})`));
    }
  }
  return out;
}

// ── requests and answers ───────────────────────────────────────────────────

interface Ask {
  action: string;
  /** Domains to list; none: all (or a machine-wide listing). */
  names?: string[];
}

function listRequest(asks: Ask[]): LdmDocument {
  const commands: Command[] = asks.map(({ action, names = [] }) => ({
    action,
    options: [],
    arguments: [],
    data: [names.length > 0 ? { version: '3.0', envelope: { contents: names.map((id) => ({ id, sections: [] })), sections: [] } } : { version: '3.0' }],
  }));
  return { root: 'LDM_interface', version: '1.3', commands };
}

interface Answer {
  /** Per command asked: its Contents and its machine-wide Sections. */
  contents: Content[][];
  sections: Section[][];
  /** The failure texts of the document, its commands and objects, each once, in order. */
  failures: string[];
}

async function ask(ctx: LdmContext, asks: Ask[]): Promise<Answer> {
  const doc = await ctx.request(listRequest(asks));
  const failures: string[] = [];
  let failed = false;
  // The objects' texts first: the command and the document fail with them, mostly without texts of their own.
  const add = (r: { status: string; messages: string[] } | undefined) => {
    if (r?.status !== 'failure') return;
    failed = true;
    for (const msg of r.messages) if (!failures.includes(msg)) failures.push(msg);
  };
  const contents: Content[][] = [];
  const sections: Section[][] = [];
  asks.forEach((a, i) => {
    const cmd = doc.commands[i];
    if (!cmd) failures.push(m.listNoAnswer(a.action));
    const data: Data[] = cmd?.data ?? [];
    for (const d of data) add(d.response);
    add(cmd?.response);
    contents.push(data.flatMap((d) => d.envelope?.contents ?? []));
    sections.push(data.flatMap((d) => d.envelope?.sections ?? []));
  });
  add(doc.response);
  if (failed && failures.length === 0) failures.push(m.failedWithoutReason(asks[0]!.action));
  return { contents, sections, failures };
}

/** Print the listing's lines, then the agent's failure texts; the exit status. */
function finish(ctx: LdmContext, lines: string[], failures: string[]): number {
  for (const l of lines) ctx.out(l);
  for (const f of failures) ctx.err(f);
  return failures.length > 0 ? 1 : 0;
}

/** Bus device path -> pseudonym, from list-io's BUS rows. */
function ioAliases(sections: Section[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const it of sections.flatMap((s) => s.items)) {
    const path = it.props.get('path');
    const name = it.props.get('name');
    if (path && name) map.set(path, name);
  }
  return map;
}

/** Every device list-io names, in its order (buses, endpoints, functions): the order list-devices keeps. */
const ioOrder = (sections: Section[]): string[] =>
  sections.flatMap((s) => s.items).map((it) => it.props.get('path') ?? it.props.get('name') ?? '');

/** Service name -> providing domain, from list-services. */
function serviceDomains(contents: Content[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const c of contents) for (const it of itemsOf(c)) if (it.type !== 'vds_volume' && it.props.get('service_name')) map.set(it.props.get('service_name')!, c.id);
  return map;
}

/**
 * The domains a listing holds: an object that lists nothing echoes the request's
 * Contents (names without a resource) beside its failure; those are not domains.
 */
const listed = (contents: Content[] | undefined): Content[] => (contents ?? []).filter((c) => firstItem(c, 'ldom_info') !== undefined);

/** Per-domain blocks of a long listing, parted by a rule. */
function joinDomains(blocks: string[][]): string[] {
  return blocks.flatMap((b, i) => (i === 0 ? b : [DOMAIN_RULE, ...b]));
}

// ── list-domain and list-bindings ──────────────────────────────────────────

function readFormats(values: string[] | undefined): OFormat[] {
  const formats: OFormat[] = [];
  for (const text of (values ?? []).flatMap((v) => v.split(','))) {
    const f = (O_FORMATS as readonly string[]).includes(text) ? (text as OFormat) : O_ALIASES[text];
    if (!f) throw new UsageError(m.listBadFormat(text));
    if (!formats.includes(f)) formats.push(f);
  }
  return formats;
}

/** The long form (list -l, list-bindings): list-bindings, with list-io and list-services for the names it shows. */
async function longListing(ctx: LdmContext, names: string[], parseableOut: boolean): Promise<number> {
  const a = await ask(ctx, [{ action: 'list-bindings', names }, { action: 'list-io' }, { action: 'list-services' }]);
  const lc: LongContext = { ioAlias: ioAliases(a.sections[1]!), serviceDomain: serviceDomains(a.contents[2]!) };
  const domains = listed(a.contents[0]);
  if (parseableOut) return finish(ctx, domains.length > 0 ? [PARSEABLE_VERSION, ...domains.flatMap((c) => longRecords(c, lc))] : [], a.failures);
  return finish(ctx, joinDomains(domains.map((c) => [TABLE_HEADER, tableRow(c), '', ...longSections(c, lc)])), a.failures);
}

const listDomain: LdmCommand = {
  names: ['list-domain', 'list', 'ls', 'ls-dom'],
  usage: 'list-domain [-l] [-p] [-o status|cpu|memory|network|disk[,...]] [DOMAIN...]',
  async run(ctx, args) {
    const o = parseList(args, 'lp', 'o');
    const formats = readFormats(o.values.get('o'));
    const p = o.flags.has('p');
    if (formats.length > 0) {
      if (o.flags.has('l')) throw new UsageError(m.listLongWithFormat());
      const a = await ask(ctx, [{ action: 'list-bindings', names: o.operands }, { action: 'list-services' }]);
      const lc: LongContext = { ...emptyContext(), serviceDomain: serviceDomains(a.contents[1]!) };
      const domains = listed(a.contents[0]);
      if (p) return finish(ctx, domains.length > 0 ? [PARSEABLE_VERSION, ...domains.flatMap((c) => oRecords(c, formats, lc))] : [], a.failures);
      return finish(ctx, joinDomains(domains.map((c) => oSections(c, formats, lc))), a.failures);
    }
    if (o.flags.has('l')) return longListing(ctx, o.operands, p);
    const a = await ask(ctx, [{ action: 'list-domain', names: o.operands }]);
    const domains = listed(a.contents[0]);
    if (domains.length === 0) return finish(ctx, [], a.failures);
    if (p) return finish(ctx, [PARSEABLE_VERSION, ...domains.map((c) => domainLine(c, false))], a.failures);
    return finish(ctx, [TABLE_HEADER, ...domains.map(tableRow)], a.failures);
  },
};

const listBindings: LdmCommand = {
  names: ['list-bindings', 'ls-bindings'],
  usage: 'list-bindings [-p] [DOMAIN...]',
  async run(ctx, args) {
    const o = parseList(args, 'p', '');
    return longListing(ctx, o.operands, o.flags.has('p'));
  },
};

// ── list-constraints ───────────────────────────────────────────────────────

const listConstraints: LdmCommand = {
  names: ['list-constraints', 'ls-constraints'],
  usage: 'list-constraints [-x | -p] [DOMAIN...]',
  async run(ctx, args) {
    const o = parseList(args, 'xp', '');
    if (o.flags.has('x') && o.flags.has('p')) throw new UsageError(m.listXWithP());
    const a = await ask(ctx, [{ action: 'list-constraints', names: o.operands }, { action: 'list-services' }]);
    const domains = listed(a.contents[0]);
    if (o.flags.has('x')) {
      // Our choice: a request add-domain can take back as it is (`ldm add-domain -i FILE`, or `ldm xml FILE`), one object per domain.
      if (domains.length === 0) return finish(ctx, [], a.failures);
      const doc: LdmDocument = {
        root: 'LDM_interface',
        version: '1.3',
        commands: [{ action: 'add-domain', options: [], arguments: [], data: domains.map((c) => ({ version: '3.0', envelope: { contents: [c], sections: [] } })) }],
      };
      return finish(ctx, [encodeDocument(doc, { declaration: true }).trimEnd()], a.failures);
    }
    const lc: LongContext = { ...emptyContext(), serviceDomain: serviceDomains(a.contents[1]!) };
    if (o.flags.has('p')) return finish(ctx, domains.length > 0 ? [PARSEABLE_VERSION, ...domains.flatMap((c) => constraintRecords(c, lc))] : [], a.failures);
    return finish(ctx, joinDomains(domains.map((c) => constraintSections(c, lc))), a.failures);
  },
};

// ── machine-wide listings ──────────────────────────────────────────────────

const listDevices: LdmCommand = {
  names: ['list-devices', 'ls-devices'],
  usage: 'list-devices [-a] [-p] [core|cpu|mau|memory|io...]',
  async run(ctx, args) {
    const o = parseList(args, 'ap', '');
    const kinds: DeviceKind[] = [];
    for (const text of o.operands) {
      const k = (DEVICE_KINDS as readonly string[]).includes(text) ? (text as DeviceKind) : DEVICE_ALIASES[text];
      if (!k) throw new UsageError(m.listBadDeviceKind(text));
      if (!kinds.includes(k)) kinds.push(k);
    }
    const a = await ask(ctx, [{ action: 'list-devices' }, { action: 'list-bindings' }, { action: 'list-io' }]);
    const view = machineView(a.sections[0]!, a.contents[1]!, ioAliases(a.sections[2]!), ioOrder(a.sections[2]!));
    const chosen = kinds.length > 0 ? kinds : [...DEVICE_KINDS];
    const all = o.flags.has('a');
    if (o.flags.has('p')) return finish(ctx, [PARSEABLE_VERSION, ...devicesRecords(view, chosen, all)], a.failures);
    return finish(ctx, devicesText(view, chosen, all), a.failures);
  },
};

const listServices: LdmCommand = {
  names: ['list-services', 'ls-services'],
  usage: 'list-services [-p] [DOMAIN...]',
  async run(ctx, args) {
    const o = parseList(args, 'p', '');
    const a = await ask(ctx, [{ action: 'list-services', names: o.operands }]);
    const contents = a.contents[0]!;
    if (o.flags.has('p')) return finish(ctx, [PARSEABLE_VERSION, ...servicesRecords(contents)], a.failures);
    return finish(ctx, servicesText(contents), a.failures);
  },
};

const listVariable: LdmCommand = {
  names: ['list-variable', 'ls-variable', 'list-var', 'ls-var'],
  usage: 'list-variable [VAR-NAME...] DOMAIN',
  async run(ctx, args) {
    const o = parseList(args, '', '');
    const domain = o.operands.at(-1);
    if (domain === undefined) throw new UsageError(m.listVariableNeedsDomain());
    const wanted = o.operands.slice(0, -1);
    const a = await ask(ctx, [{ action: 'list-variable', names: [domain] }]);
    const vars = itemsOf(a.contents[0]!.find((c) => c.id === domain), 'var').map((v) => [v.props.get('name') ?? '', v.props.get('value') ?? ''] as const);
    if (wanted.length === 0) return finish(ctx, vars.map(([k, v]) => `${k}=${v}`), a.failures);
    const lines: string[] = [];
    const failures = [...a.failures];
    for (const name of wanted) {
      const found = vars.find(([k]) => k === name);
      if (found) lines.push(`${found[0]}=${found[1]}`);
      else if (a.failures.length === 0) failures.push(m.variableNotFound(name, domain));
    }
    return finish(ctx, lines, failures);
  },
};

const listSpconfig: LdmCommand = {
  names: ['list-spconfig', 'ls-spconfig', 'list-config', 'ls-config'],
  usage: 'list-spconfig',
  async run(ctx, args) {
    const o = parseList(args, '', '');
    if (o.operands.length > 0) throw new UsageError(m.listNoOperands('list-spconfig', o.operands[0]!));
    const a = await ask(ctx, [{ action: 'list-spconfig' }]);
    return finish(ctx, spconfigLines(a.sections[0]!), a.failures);
  },
};

export const commands: LdmCommand[] = [listDomain, listBindings, listConstraints, listDevices, listServices, listVariable, listSpconfig];
