/**
 * Reading one object (<data>) of a request: which domain it names and the
 * resource items it carries. Missing or malformed properties become
 * ObjectError, answered as an object failure.
 *
 * What a handler reads is recorded (items taken, keys read), so that what it
 * did not read is warned about instead of dropped in silence: `unread`.
 */
import { objectMessages as m } from '../messages.ts';
import { MAX_AMOUNT } from '../model/limits.ts';
import { readSize } from '../model/sizes.ts';
import type { Content, Data, Item } from '../xml/document.ts';

export class ObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectError';
  }
}

const fail = (message: string): never => {
  throw new ObjectError(message);
};

/** The domain an object names: its first Content (protocol.md section 2). */
export function domainOf(data: Data, fallback?: string): string {
  const id = data.envelope?.contents[0]?.id;
  if (id) return id;
  if (fallback !== undefined) return fallback;
  return fail(m.noDomain());
}

export function contents(data: Data): Content[] {
  return data.envelope?.contents ?? [];
}

/**
 * The keys a handler read of each item it took: GenericProperty keys as they
 * are, rasd elements as `rasd:Name`, the ldom_info uuid element as `<uuid>`.
 * Keyed by the decoded Item, so it lives as long as the request.
 */
const readKeys = new WeakMap<Item, Set<string>>();

function mark(item: Item, key?: string): void {
  let keys = readKeys.get(item);
  if (!keys) readKeys.set(item, (keys = new Set()));
  if (key !== undefined) keys.add(key);
}

function allItems(data: Data): Item[] {
  const env = data.envelope;
  if (!env) return [];
  return [...env.contents.flatMap((c) => c.sections), ...env.sections].flatMap((s) => s.items);
}

/** Every Item of `type` in the object, in Contents and in Sections straight under the Envelope; the handler takes them all. */
export function items(data: Data, type: string): Item[] {
  const found = allItems(data).filter((i) => i.type.toLowerCase() === type);
  for (const i of found) mark(i);
  return found;
}

/** The first item of `type`, if any: the handler takes that one only (a second one is warned about). */
export function firstItem(data: Data, type: string): Item | undefined {
  const found = allItems(data).find((i) => i.type.toLowerCase() === type);
  if (found) mark(found);
  return found;
}

/** The one item of `type` the object must carry. */
export function theItem(data: Data, type: string): Item {
  return firstItem(data, type) ?? fail(m.noItem(type));
}

/** A GenericProperty, or undefined. */
export function prop(item: Item, key: string): string | undefined {
  mark(item, key);
  return item.props.get(key);
}

/** A rasd:* element (`Address`, `AllocationUnits`), or undefined. */
export function rasd(item: Item, name: string): string | undefined {
  mark(item, `rasd:${name}`);
  return item.rasd.get(name);
}

/** The 3.x `<uuid>` element of an ldom_info item, or undefined. */
export function uuidOf(item: Item): string | undefined {
  mark(item, '<uuid>');
  return item.uuid;
}

/**
 * Keys that listings emit but that describe the domain's state rather than
 * what to change: list-domain or list-bindings output sent back is read
 * without a warning about them. (bind:Binding content is output only too.)
 */
const OUTPUT_ONLY: Record<string, readonly string[]> = {
  ldom_info: ['state', 'flags', 'softstate', 'progress', 'status', 'source', 'operation', 'target', 'error', 'sim-workload', 'sim-filled', 'uptime'],
  spconfig: ['spconfig_status'],
};

/**
 * What the handler did not read of the object, as warnings (the 3.6 second
 * object response): items it did not take, and keys of the items it took.
 * The same warning for many items is given once, with their count, so that
 * a document of thousands of items does not get thousands of lines back.
 */
export function unread(data: Data, action: string): string[] {
  const all = allItems(data);
  const takenTypes = new Set(all.filter((i) => readKeys.has(i)).map((i) => i.type.toLowerCase()));
  const notes = new Map<string, number>();
  const note = (text: string) => notes.set(text, (notes.get(text) ?? 0) + 1);
  for (const i of all) {
    const keys = readKeys.get(i);
    if (!keys) {
      note(takenTypes.has(i.type.toLowerCase()) ? m.extraItem(i.type, action) : m.ignoredItem(i.type, action));
      continue;
    }
    const skip = OUTPUT_ONLY[i.type.toLowerCase()] ?? [];
    const left = [
      ...(i.uuid !== undefined && !keys.has('<uuid>') ? ['<uuid>'] : []),
      ...[...i.rasd.keys()].map((k) => `rasd:${k}`).filter((k) => !keys.has(k)),
      ...[...i.props.keys()].filter((k) => !keys.has(k) && !skip.includes(k)),
    ];
    if (left.length > 0) note(m.ignoredKeys(i.type, left, action));
  }
  return [...notes].map(([text, count]) => (count > 1 ? m.manyItems(text, count) : text));
}

export function required(item: Item, key: string): string {
  mark(item, key);
  const v = item.props.get(key);
  if (v === undefined || v === '') fail(m.missingProperty(item.type, key));
  return v!;
}

export function integer(item: Item, key: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) fail(m.badNumber(item.type, key, value));
  // Beyond this a number is not kept exactly, and the saved state would not load again.
  if (Number(value) > MAX_AMOUNT) fail(m.numberTooLarge(item.type, key, value, MAX_AMOUNT));
  return Number(value);
}

/** rasd:AllocationUnits as a count. */
export function units(item: Item): number {
  const v = rasd(item, 'AllocationUnits');
  if (v === undefined) fail(m.missingUnits(item.type));
  return integer(item, 'AllocationUnits', v, 0)!;
}

/** rasd:AllocationUnits as a size (`4G`, `512M`, bytes). */
export function size(item: Item): number {
  const v = rasd(item, 'AllocationUnits') ?? fail(m.missingUnits(item.type));
  const r = readSize(v);
  if ('problem' in r && r.problem === 'range') fail(m.sizeTooLarge(v, MAX_AMOUNT));
  if (!('bytes' in r) || r.bytes <= 0) fail(m.badSize(v));
  return (r as { bytes: number }).bytes;
}

export function boolean(item: Item, key: string): boolean | undefined {
  const v = prop(item, key);
  if (v === undefined) return undefined;
  if (!['true', 'false', 'on', 'off', 'yes', 'no'].includes(v.toLowerCase())) fail(m.badBoolean(item.type, key, v));
  return ['true', 'on', 'yes'].includes(v.toLowerCase());
}
