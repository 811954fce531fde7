/**
 * Reading one object (<data>) of a request: which domain it names and the
 * resource items it carries. Missing or malformed properties become
 * ObjectError, answered as an object failure.
 */
import { objectMessages as m } from '../messages.ts';
import { parseSize } from '../model/sizes.ts';
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

/** Every Item of the object, in Contents and in Sections straight under the Envelope. */
export function items(data: Data, type?: string): Item[] {
  const env = data.envelope;
  if (!env) return [];
  const all = [...env.contents.flatMap((c) => c.sections), ...env.sections].flatMap((s) => s.items);
  return type === undefined ? all : all.filter((i) => i.type.toLowerCase() === type);
}

/** The one item of `type` the object must carry. */
export function theItem(data: Data, type: string): Item {
  return items(data, type)[0] ?? fail(m.noItem(type));
}

/** A GenericProperty, or undefined. */
export function prop(item: Item, key: string): string | undefined {
  return item.props.get(key);
}

export function required(item: Item, key: string): string {
  const v = item.props.get(key);
  if (v === undefined || v === '') fail(m.missingProperty(item.type, key));
  return v!;
}

export function integer(item: Item, key: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) fail(m.badNumber(item.type, key, value));
  return Number(value);
}

/** rasd:AllocationUnits as a count. */
export function units(item: Item): number {
  const v = item.rasd.get('AllocationUnits');
  if (v === undefined) fail(m.missingUnits(item.type));
  return integer(item, 'AllocationUnits', v, 0)!;
}

/** rasd:AllocationUnits as a size (`4G`, `512M`, bytes). */
export function size(item: Item): number {
  const v = item.rasd.get('AllocationUnits') ?? fail(m.missingUnits(item.type));
  const bytes = parseSize(v);
  if (bytes === null || bytes <= 0) fail(m.badSize(v));
  return bytes!;
}

export function boolean(item: Item, key: string): boolean | undefined {
  const v = item.props.get(key);
  if (v === undefined) return undefined;
  if (!['true', 'false', 'on', 'off', 'yes', 'no'].includes(v.toLowerCase())) fail(m.badBoolean(item.type, key, v));
  return ['true', 'on', 'yes'].includes(v.toLowerCase());
}
