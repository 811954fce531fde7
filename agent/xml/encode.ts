/**
 * Typed LDM document -> XML text.
 *
 * Output always declares the conventional prefixes on the root (protocol.md
 * section 2), so it is namespace-well-formed and valid against schemas/.
 * Over XMPP no XML declaration may appear inside the stream, so the
 * declaration is opt-in (files want it).
 */
import { RASD_NAME, type Command, type Content, type Data, type Envelope, type Item, type LdmDocument, type ResponseStatus, type Section } from './document.ts';

/** The namespace URIs we emit: those of the 3.x guide's example. */
export const NAMESPACES = {
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  ovf: './schemas/envelope',
  rasd: './schemas/CIM_ResourceAllocationSettingData',
  vssd: './schemas/CIM_VirtualSystemSettingData',
  gprop: './schemas/GenericProperty',
  bind: './schemas/Binding',
} as const;

const ROOT_NS = Object.entries(NAMESPACES)
  .map(([prefix, uri]) => ` xmlns:${prefix}="${uri}"`)
  .join('');

export interface EncodeOptions {
  /** Start with `<?xml version="1.0" encoding="UTF-8"?>` (files: yes; XMPP stream: no). */
  declaration?: boolean;
  /** Indent with two spaces per level (default true); false gives one line. */
  indent?: boolean;
}

// CR is escaped everywhere (a parser turns a literal CR into LF); TAB and LF only matter in
// attribute values, where a parser would turn them into spaces.
const ESCAPES: Record<string, string> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;', '\t': '&#9;', '\n': '&#10;',
};
// Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF, CR; unpaired surrogates; FFFE/FFFF).
const FORBIDDEN_SOURCE =
  '[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const HAS_FORBIDDEN = new RegExp(FORBIDDEN_SOURCE);
const ALL_FORBIDDEN = new RegExp(FORBIDDEN_SOURCE, 'g');

/** Escape character data; characters XML cannot carry become U+FFFD. */
export function escapeXml(value: string): string {
  const safe = HAS_FORBIDDEN.test(value) ? value.replace(ALL_FORBIDDEN, '\ufffd') : value;
  return /[&<>"'\r]/.test(safe) ? safe.replace(/[&<>"'\r]/g, (c) => ESCAPES[c]!) : safe;
}

/** Escape an attribute value so that it reads back exactly, white space included. */
export function escapeAttr(value: string): string {
  const text = escapeXml(value);
  return /[\t\n]/.test(text) ? text.replace(/[\t\n]/g, (c) => ESCAPES[c]!) : text;
}

class Writer {
  private readonly parts: string[] = [];
  private depth = 0;
  constructor(private readonly indent: boolean) {}

  private pad(): void {
    if (this.indent && this.parts.length > 0) this.parts.push('\n' + '  '.repeat(this.depth));
  }
  open(tag: string, attrs = ''): void {
    this.pad();
    this.parts.push(`<${tag}${attrs}>`);
    this.depth++;
  }
  close(tag: string): void {
    this.depth--;
    this.pad();
    this.parts.push(`</${tag}>`);
  }
  empty(tag: string, attrs = ''): void {
    this.pad();
    this.parts.push(`<${tag}${attrs}/>`);
  }
  leaf(tag: string, text: string, attrs = ''): void {
    this.pad();
    this.parts.push(`<${tag}${attrs}>${escapeXml(text)}</${tag}>`);
  }
  raw(text: string): void {
    this.parts.push(text);
  }
  toString(): string {
    return this.parts.join('') + (this.indent ? '\n' : '');
  }
}

function writeStatus(w: Writer, r: ResponseStatus): void {
  w.open('response');
  w.leaf('status', r.status);
  for (const m of r.messages) w.leaf('resp_msg', m);
  w.close('response');
}

function writeItem(w: Writer, item: Item): void {
  w.open('Item');
  w.leaf('rasd:OtherResourceType', item.type);
  if (item.uuid !== undefined) w.leaf('uuid', item.uuid);
  for (const [name, value] of item.rasd) {
    if (!RASD_NAME.test(name)) throw new TypeError(`not an XML name for a rasd element: ${JSON.stringify(name)}`);
    w.leaf(`rasd:${name}`, value);
  }
  for (const [key, value] of item.props) w.leaf('gprop:GenericProperty', value, ` key="${escapeAttr(key)}"`);
  if (item.bindings.length > 0) {
    w.open('bind:Binding');
    for (const b of item.bindings) writeItem(w, b);
    w.close('bind:Binding');
  }
  w.close('Item');
}

function writeSection(w: Writer, s: Section): void {
  const attrs = ` xsi:type="ovf:${escapeAttr(s.type ?? 'ResourceAllocationSection_Type')}"`;
  if (s.items.length === 0) return w.empty('Section', attrs);
  w.open('Section', attrs);
  for (const it of s.items) writeItem(w, it);
  w.close('Section');
}

function writeContent(w: Writer, c: Content): void {
  const attrs = ` xsi:type="ovf:${escapeAttr(c.type ?? 'VirtualSystem_Type')}" ovf:id="${escapeAttr(c.id)}"`;
  if (c.sections.length === 0) return w.empty('Content', attrs);
  w.open('Content', attrs);
  for (const s of c.sections) writeSection(w, s);
  w.close('Content');
}

function writeEnvelope(w: Writer, env: Envelope): void {
  w.open('Envelope');
  w.empty('References');
  for (const c of env.contents) writeContent(w, c);
  for (const s of env.sections) writeSection(w, s);
  w.close('Envelope');
}

function writeData(w: Writer, d: Data): void {
  const attrs = ` version="${escapeAttr(d.version)}"`;
  if (!d.envelope && !d.response) return w.empty('data', attrs);
  w.open('data', attrs);
  if (d.envelope) writeEnvelope(w, d.envelope);
  if (d.response) writeStatus(w, d.response);
  if (d.response && d.warning) writeStatus(w, d.warning);
  w.close('data');
}

function writeCommand(w: Writer, cmd: Command, optionTag: string): void {
  w.open('cmd');
  if (cmd.action !== null) w.leaf('action', cmd.action);
  for (const o of cmd.options) w.leaf(optionTag, o);
  for (const a of cmd.arguments) w.leaf('arguments', a);
  for (const d of cmd.data) writeData(w, d);
  if (cmd.response) writeStatus(w, cmd.response);
  w.close('cmd');
}

/** 1.x documents spell options `<option>`, later ones `<options>`: answer in the client's dialect. */
function optionTagFor(version: string): string {
  const major = Number.parseInt(version, 10);
  const minor = Number.parseInt(version.split('.')[1] ?? '0', 10);
  return major === 1 && minor < 3 ? 'option' : 'options';
}

export function encodeDocument(doc: LdmDocument, options: EncodeOptions = {}): string {
  const w = new Writer(options.indent ?? true);
  if (options.declaration) w.raw('<?xml version="1.0" encoding="UTF-8"?>');
  w.open(doc.root, `${ROOT_NS} version="${escapeAttr(doc.version)}"`);
  const optionTag = optionTagFor(doc.version);
  for (const cmd of doc.commands) writeCommand(w, cmd, optionTag);
  if (doc.response) writeStatus(w, doc.response);
  w.close(doc.root);
  return w.toString();
}
