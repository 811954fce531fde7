/**
 * The typed form of LDM documents. Requests, responses and events share one
 * shape (a response echoes the request's commands and adds <response>
 * elements), so one decoder and one encoder serve the agent, the `ldm`
 * client and the migration source alike.
 */

export type Status = 'success' | 'failure';

/** A <response>: status plus zero or more <resp_msg>. */
export interface ResponseStatus {
  status: Status;
  messages: string[];
}

/**
 * An <Item>: one resource. `type` is rasd:OtherResourceType; `rasd` holds the
 * other rasd:* elements by canonical local name (AllocationUnits, Address, ...);
 * `props` holds gprop:GenericProperty values by key; `bindings` the Items of a
 * bind:Binding (list-bindings output only).
 */
export interface Item {
  type: string;
  rasd: Map<string, string>;
  props: Map<string, string>;
  bindings: Item[];
  /** 3.x ldom_info carries the domain's uuid as an element of its own. */
  uuid?: string;
}

/** A <Section>; `type` is the local part of its xsi:type, e.g. ResourceAllocationSection_Type. */
export interface Section {
  type?: string;
  items: Item[];
}

/** A <Content>: one domain, named by its id/ovf:id attribute. */
export interface Content {
  id: string;
  type?: string;
  sections: Section[];
}

/** An <Envelope>: domains, and sections that belong to no domain (services, spconfig). */
export interface Envelope {
  contents: Content[];
  sections: Section[];
}

/** A <data> element: one object of a command, with its object-level responses. */
export interface Data {
  version: string;
  envelope?: Envelope;
  response?: ResponseStatus;
  /** 3.6: an optional second object-level response carrying a warning. */
  warning?: ResponseStatus;
  /** Set by the decoder when this object is malformed; the object then fails with this text. */
  problem?: string;
  line?: number;
}

export interface Command {
  /** Null when the cmd has no usable action (see `problem`). */
  action: string | null;
  /** <option> (1.x) and <options> (3.x) texts, in order. */
  options: string[];
  /** <arguments> texts (3.x), in order. */
  arguments: string[];
  data: Data[];
  response?: ResponseStatus;
  /** Set by the decoder when the cmd itself is malformed; the command then fails with this text. */
  problem?: string;
  line?: number;
}

export type RootName = 'LDM_interface' | 'LDM_event';

export interface LdmDocument {
  root: RootName;
  version: string;
  commands: Command[];
  response?: ResponseStatus;
}

/** Names a rasd:* element may have in our documents: ASCII XML names without a prefix. */
export const RASD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Option tokens of a command, both spellings, split on white space (`-r name` -> ['-r','name']). */
export function optionTokens(cmd: Command): string[] {
  return cmd.options.flatMap((o) => o.split(/\s+/).filter(Boolean));
}

export function item(type: string, props: Record<string, string> = {}, rasd: Record<string, string> = {}): Item {
  return { type, rasd: new Map(Object.entries(rasd)), props: new Map(Object.entries(props)), bindings: [] };
}

export const success = (): ResponseStatus => ({ status: 'success', messages: [] });
export const failure = (...messages: string[]): ResponseStatus => ({ status: 'failure', messages });

/** Bytes of markup around an Item and around each of its values, as encode.ts writes them (rounded up). */
const ITEM_OVERHEAD = 160;
const VALUE_OVERHEAD = 80;

/**
 * About how many bytes an Envelope takes once encoded, without encoding it:
 * enough to bound a response before it is built as text (escaping aside).
 */
export function approximateSize(env: Envelope): number {
  let bytes = 0;
  const items = (list: Item[]): void => {
    for (const it of list) {
      bytes += ITEM_OVERHEAD + it.type.length + (it.uuid?.length ?? 0);
      for (const [k, v] of it.rasd) bytes += VALUE_OVERHEAD + 2 * k.length + v.length;
      for (const [k, v] of it.props) bytes += VALUE_OVERHEAD + k.length + v.length;
      items(it.bindings);
    }
  };
  for (const c of env.contents) {
    bytes += ITEM_OVERHEAD + c.id.length;
    for (const s of c.sections) items(s.items);
  }
  for (const s of env.sections) items(s.items);
  return bytes;
}
