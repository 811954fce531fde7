/**
 * Element tree -> typed LDM document.
 *
 * Structural problems are reported at the level the protocol answers them
 * (protocol.md section 3): a broken document throws an XmlError (overall
 * failure); a malformed <cmd> or <data> is kept and marked with `problem`, so
 * the manager answers it with a command or object failure and goes on with
 * the rest of the document.
 */
import { ErrorCodes, XmlError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import { isLdmAction } from './actions.ts';
import { RASD_NAME, type Command, type Content, type Data, type Envelope, type Item, type LdmDocument, type ResponseStatus, type RootName, type Section } from './document.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from './limits.ts';
import { attr, childrenNamed, firstChild, parseXml, type XmlElement } from './tree.ts';

/** What kind of document the caller expects; requests also get their actions checked. */
export type DocumentKind = 'request' | 'response' | 'event';

const ROOT_OF: Record<DocumentKind, RootName> = {
  request: 'LDM_interface',
  response: 'LDM_interface',
  event: 'LDM_event',
};

/** A problem with one object; caught at <data> level and turned into `Data.problem`. */
class ObjectProblem extends Error {}

const RASD_NAMES = new Map(
  [
    'OtherResourceType', 'AllocationUnits', 'Address', 'ResourceType', 'ResourceSubType', 'InstanceID',
    'ElementName', 'Caption', 'Description', 'Reservation', 'Limit', 'Weight', 'VirtualQuantity',
    'Parent', 'Connection', 'HostResource', 'AutomaticAllocation', 'AddressOnParent', 'PoolID',
  ].map((n) => [n.toLowerCase(), n]),
);

/**
 * Strip XML white space only (XML 1.0 production S: space, tab, CR, LF).
 * JavaScript's trim() would also take U+00A0, U+FEFF, U+2028 and the like,
 * which are content in XML.
 */
export function xmlTrim(text: string): string {
  // A loop, not a regular expression: /\s+$/-style patterns are quadratic on long runs of spaces.
  let start = 0;
  let end = text.length;
  while (start < end && isXmlSpace(text.charCodeAt(start))) start++;
  while (end > start && isXmlSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
const isXmlSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const trimmed = (el: XmlElement) => xmlTrim(el.text);

/** xsi:type="ovf:VirtualSystem_Type" -> "VirtualSystem_Type". */
function xsiType(el: XmlElement): string | undefined {
  const t = attr(el, 'type');
  if (t === undefined) return undefined;
  const colon = t.indexOf(':');
  return colon < 0 ? t : t.slice(colon + 1);
}

function decodeItem(el: XmlElement): Item {
  const item: Item = { type: '', rasd: new Map(), props: new Map(), bindings: [] };
  let sawType = false;
  for (const child of el.children) {
    switch (child.local) {
      case 'otherresourcetype':
        item.type = trimmed(child);
        sawType = item.type !== '';
        break;
      case 'genericproperty': {
        const key = attr(child, 'key');
        if (key === undefined || key === '') throw new ObjectProblem(xmlMessages.propertyWithoutKey());
        item.props.set(key, trimmed(child));
        break;
      }
      case 'binding':
        for (const inner of childrenNamed(child, 'item')) item.bindings.push(decodeItem(inner));
        break;
      case 'uuid':
        item.uuid = trimmed(child);
        break;
      default: {
        // rasd:* values by their canonical name; other decorations we do not understand are dropped.
        const known = RASD_NAMES.get(child.local);
        if (known) item.rasd.set(known, trimmed(child));
        else if (child.name.toLowerCase().startsWith('rasd:') && RASD_NAME.test(child.name.slice(5))) {
          item.rasd.set(child.name.slice(5), trimmed(child));
        }
      }
    }
  }
  if (!sawType) throw new ObjectProblem(xmlMessages.itemWithoutType());
  return item;
}

function decodeSection(el: XmlElement): Section {
  return { type: xsiType(el), items: childrenNamed(el, 'item').map(decodeItem) };
}

function decodeContent(el: XmlElement): Content {
  const id = attr(el, 'id');
  if (id === undefined || xmlTrim(id) === '') throw new ObjectProblem(xmlMessages.contentWithoutId());
  return { id: xmlTrim(id), type: xsiType(el), sections: childrenNamed(el, 'section').map(decodeSection) };
}

function decodeEnvelope(el: XmlElement): Envelope {
  const env: Envelope = { contents: [], sections: [] };
  for (const child of el.children) {
    if (child.local === 'content') env.contents.push(decodeContent(child));
    else if (child.local === 'section') env.sections.push(decodeSection(child));
    // <References/> and unknown decorations are ignored: match what we understand.
  }
  return env;
}

function decodeStatus(el: XmlElement): ResponseStatus {
  const statusEl = firstChild(el, 'status');
  if (!statusEl) throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.responseWithoutStatus(), el.line);
  const value = trimmed(statusEl).toLowerCase();
  if (value !== 'success' && value !== 'failure') {
    throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.badStatus(trimmed(statusEl)), statusEl.line);
  }
  return { status: value, messages: childrenNamed(el, 'resp_msg').map(trimmed) };
}

function decodeData(el: XmlElement, kind: DocumentKind): Data {
  const data: Data = { version: attr(el, 'version') ?? '3.0', line: el.line };
  const responses = childrenNamed(el, 'response');
  try {
    for (const child of el.children) {
      if (child.local === 'envelope') {
        if (data.envelope) throw new ObjectProblem(xmlMessages.severalEnvelopes());
        data.envelope = decodeEnvelope(child);
      } else if (child.local === 'response') {
        continue;
      } else if (child.local === 'content') {
        // Sloppy but unambiguous: a Content without its Envelope.
        data.envelope ??= { contents: [], sections: [] };
        data.envelope.contents.push(decodeContent(child));
      } else {
        throw new ObjectProblem(xmlMessages.unexpectedInData(child.name));
      }
    }
  } catch (err) {
    if (!(err instanceof ObjectProblem)) throw err;
    data.problem = err.message;
  }
  if (kind !== 'request') {
    if (responses[0]) data.response = decodeStatus(responses[0]);
    if (responses[1]) data.warning = decodeStatus(responses[1]);
  }
  return data;
}

function decodeCommand(el: XmlElement, kind: DocumentKind, checkActions: boolean): Command {
  const cmd: Command = { action: null, options: [], arguments: [], data: [], line: el.line };
  const actions = childrenNamed(el, 'action');
  if (actions.length === 0) cmd.problem = xmlMessages.noAction();
  else if (actions.length > 1) cmd.problem = xmlMessages.severalActions(actions.length);
  else {
    const action = trimmed(actions[0]!);
    if (action === '') cmd.problem = xmlMessages.emptyAction();
    else {
      cmd.action = action;
      if (checkActions && !isLdmAction(action)) cmd.problem = xmlMessages.unknownAction(action);
    }
  }
  for (const child of el.children) {
    switch (child.local) {
      case 'option':
      case 'options':
        if (trimmed(child) !== '') cmd.options.push(trimmed(child));
        break;
      case 'arguments':
        if (child.children.length > 0) cmd.arguments.push(...child.children.map(trimmed).filter((a) => a !== ''));
        else if (trimmed(child) !== '') cmd.arguments.push(trimmed(child));
        break;
      case 'data':
        cmd.data.push(decodeData(child, kind));
        break;
      case 'response':
        if (kind !== 'request') cmd.response = decodeStatus(child);
        break;
    }
  }
  return cmd;
}

export interface DecodeOptions {
  /** Mark commands whose action is not in LDM_ACTIONS (default: for requests only). */
  checkActions?: boolean;
}

/** Decode a parsed root element. Throws XmlError for document-level problems. */
export function decodeTree(root: XmlElement, kind: DocumentKind, options: DecodeOptions = {}): LdmDocument {
  const checkActions = options.checkActions ?? kind === 'request';
  const expected = ROOT_OF[kind];
  if (root.local !== expected.toLowerCase()) {
    throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.wrongRoot(root.name, expected), root.line);
  }
  const version = attr(root, 'version');
  if (version === undefined || xmlTrim(version) === '') {
    throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.missingVersion(expected), root.line);
  }
  const cmds = childrenNamed(root, 'cmd');
  const overall = kind === 'request' ? undefined : firstChild(root, 'response');
  // A response to an unparseable document has no commands, only the overall failure.
  if (cmds.length === 0 && !overall) throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.noCommands(expected), root.line);
  const doc: LdmDocument = { root: expected, version: xmlTrim(version), commands: cmds.map((c) => decodeCommand(c, kind, checkActions)) };
  if (overall) doc.response = decodeStatus(overall);
  return doc;
}

/** Parse and decode a document's text. Throws XmlError (with a line where known). */
export function decodeText(text: string, kind: DocumentKind, limits: XmlLimits = DEFAULT_XML_LIMITS): LdmDocument {
  return decodeTree(parseXml(text, limits), kind);
}

export const decodeRequest = (text: string, limits?: XmlLimits) => decodeText(text, 'request', limits);
export const decodeResponse = (text: string, limits?: XmlLimits) => decodeText(text, 'response', limits);
export const decodeEvent = (text: string, limits?: XmlLimits) => decodeText(text, 'event', limits);
