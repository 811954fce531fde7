/**
 * A minimal element tree over the saxes streaming parser.
 *
 * Both the whole-document codec and the XMPP stream reader (which sees LDM
 * documents as children of <stream:stream>) build trees with TreeBuilder, so
 * limits are enforced in one place. Names are kept as written; `local` is the
 * local part lower-cased, because documents in the wild disagree on prefixes
 * and case (protocol.md section 2) and we match on local names only.
 */
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { ErrorCodes, XmlError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from './limits.ts';

export interface XmlElement {
  /** Qualified name as written, e.g. `rasd:OtherResourceType`. */
  name: string;
  /** Local part, lower-cased, e.g. `otherresourcetype`. */
  local: string;
  /** Attributes by qualified name as written (null-prototype object). */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
  /** 1-based line of the start tag. */
  line: number;
}

export function localName(qname: string): string {
  const colon = qname.indexOf(':');
  return (colon < 0 ? qname : qname.slice(colon + 1)).toLowerCase();
}

/** Attribute by local name, whatever its prefix (`id` matches `id` and `ovf:id`). */
export function attr(el: XmlElement, local: string): string | undefined {
  const direct = el.attrs[local];
  if (direct !== undefined) return direct;
  for (const name in el.attrs) {
    if (localName(name) === local) return el.attrs[name];
  }
  return undefined;
}

export function childrenNamed(el: XmlElement, local: string): XmlElement[] {
  return el.children.filter((c) => c.local === local);
}

export function firstChild(el: XmlElement, local: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local);
}

/**
 * Builds element trees from parser events. Elements opened while no tree is
 * under construction become roots; `onRoot` receives each finished root.
 * Depth and element-count limits are counted per root.
 */
export class TreeBuilder {
  private readonly stack: XmlElement[] = [];
  private elements = 0;

  constructor(
    /** May be replaced between roots: a stream widens its limits once the peer has logged in. */
    public limits: XmlLimits,
    private readonly onRoot: (root: XmlElement) => void,
  ) {}

  get open(): boolean {
    return this.stack.length > 0;
  }

  openTag(tag: SaxesTagPlain, line: number): void {
    if (this.stack.length === 0) this.elements = 0;
    if (this.stack.length + 1 > this.limits.maxDepth) {
      throw new XmlError(ErrorCodes.XML_LIMIT, xmlMessages.tooDeep(this.limits.maxDepth), line);
    }
    if (++this.elements > this.limits.maxElements) {
      throw new XmlError(ErrorCodes.XML_LIMIT, xmlMessages.tooManyElements(this.limits.maxElements), line);
    }
    const attrs: Record<string, string> = Object.create(null);
    for (const name of Object.keys(tag.attributes)) attrs[name] = tag.attributes[name] as string;
    const el: XmlElement = { name: tag.name, local: localName(tag.name), attrs, children: [], text: '', line };
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
  }

  text(data: string): void {
    const top = this.stack[this.stack.length - 1];
    if (top) top.text += data;
  }

  closeTag(): void {
    const el = this.stack.pop();
    if (el && this.stack.length === 0) this.onRoot(el);
  }
}

/**
 * Wires a saxes parser to a TreeBuilder and converts every saxes error and
 * every DOCTYPE into an XmlError. Returned parser has xmlns processing off:
 * undeclared prefixes are accepted, as documents in the wild need.
 */
export function createParser(
  builder: TreeBuilder,
  hooks: {
    /** Called for start tags not handled by the builder (returns true if consumed). */
    openTag?: (tag: SaxesTagPlain, line: number) => boolean;
    closeTag?: (tag: SaxesTagPlain) => boolean;
  } = {},
): SaxesParser {
  const parser = new SaxesParser({ xmlns: false, position: true });
  let startLine = 1;
  parser.on('opentagstart', () => {
    startLine = parser.line;
  });
  parser.on('opentag', (tag) => {
    // XML 1.1 would let control characters in through character references. Checked here rather
    // than in an 'xmldecl' handler: an eighth handler turns saxes' handler object into a slow
    // dictionary-mode object in V8, and every parse gets several times slower.
    const version = parser.xmlDecl.version;
    if (version !== undefined && version !== '1.0') {
      throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.xmlVersion(version), parser.line);
    }
    if (hooks.openTag?.(tag, startLine)) return;
    builder.openTag(tag, startLine);
  });
  parser.on('closetag', (tag) => {
    if (hooks.closeTag?.(tag)) return;
    builder.closeTag();
  });
  parser.on('text', (t) => builder.text(t));
  parser.on('cdata', (t) => builder.text(t));
  parser.on('doctype', () => {
    throw new XmlError(ErrorCodes.XML_DOCTYPE, xmlMessages.doctype(), parser.line);
  });
  parser.on('error', (err) => {
    // saxes prefixes "line:column: "; keep only the reason, the line travels separately.
    const reason = err.message.replace(/^\d+:\d+:\s*/, '');
    throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, reason, parser.line);
  });
  return parser;
}

/** Parse one complete XML document into its root element, within limits. */
export function parseXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: skip the exact count when surely small.
  if (text.length * 3 > limits.maxBytes && Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    throw new XmlError(ErrorCodes.XML_LIMIT, xmlMessages.tooLarge(limits.maxBytes));
  }
  let root: XmlElement | undefined;
  const builder = new TreeBuilder(limits, (el) => {
    root = el;
  });
  const parser = createParser(builder);
  parser.write(text).close();
  if (!root) throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, 'document must contain a root element', 1);
  return root;
}
