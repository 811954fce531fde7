/**
 * Text helpers for `ldm` listings, in Oracle's style: printf-like columns with
 * trailing blanks cut, sections (an upper-case header flush left, a body
 * indented four spaces, a blank line after), parseable `KEY|k=v|k=v` lines,
 * and the units Oracle prints (sizes in the largest exact unit, uptimes
 * largest unit first).
 */
import { formatSize, parseSize } from '../../model/sizes.ts';
import type { Content, Item } from '../../xml/document.ts';

/**
 * One row of `%-W1s %-W2s ... %s`: each field padded to its width and followed
 * by one blank, the last field as is; a field longer than its width pushes the
 * rest right (ldm-cli-outputs.md 1.1); trailing blanks are cut, so a row whose
 * last fields are empty ends after its last non-empty one.
 */
export function columns(widths: readonly number[], fields: readonly string[]): string {
  let line = '';
  fields.forEach((f, i) => {
    const w = widths[i];
    line += w === undefined ? f : f.padEnd(w) + ' ';
  });
  return line.trimEnd();
}

/** A section of a long listing: the header, its lines indented four spaces, then a blank line. */
export function section(header: string, body: readonly string[], indent = '    '): string[] {
  return [header, ...body.map((l) => (l === '' ? l : indent + l)), ''];
}

/** A parseable line: `KIND|k=v|k=v` (KIND may be empty for the `|k=v` lines under a record). */
export function parseable(kind: string, fields: readonly (readonly [string, string])[]): string {
  return [kind, ...fields.map(([k, v]) => `${k}=${v}`)].join('|');
}

/** The first line of every parseable listing (the 3.x guides' `ldm ls -l -p`: VERSION 1.6). */
export const PARSEABLE_VERSION = 'VERSION 1.6';

/** Bytes of a size the agent wrote (`4G`, `512M`); empty when it is not one. */
export function sizeBytes(text: string | undefined): string {
  if (text === undefined || text === '') return '';
  const n = parseSize(text);
  return n === null ? '' : String(n);
}

/** A size as the text listings print it: the largest unit that divides it exactly (`32544M`, `4G`). */
export function sizeText(text: string | undefined): string {
  if (text === undefined || text === '') return '';
  const n = parseSize(text);
  return n === null ? text : formatSize(n);
}

/**
 * An uptime in seconds as the table prints it: days, hours and minutes,
 * largest first, zero fields left out (`45d 8h 6m`, `3d 55m`, `2h 16m`, `9m`);
 * under a minute, seconds (`12s`: our choice, the samples show none).
 */
export function uptimeText(seconds: string | undefined): string {
  if (seconds === undefined || seconds === '') return '';
  const s = Math.floor(Number(seconds));
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : ''].filter(Boolean).join(' ') || '0m';
}

/** A utilization as the table prints it (`0.6%`); the agent's value may carry its `%` or not. */
export function utilText(value: string | undefined): string {
  if (value === undefined || value === '') return '';
  const n = Number(value.replace(/%$/, ''));
  return Number.isFinite(n) ? `${n.toFixed(1)}%` : value;
}

/** A utilization as `-p` prints it: a plain number (`util=0.6`). */
export function utilNumber(value: string | undefined): string {
  return value === undefined ? '' : value.replace(/%$/, '');
}

/** Spelled-out flags of `-l -p` (ldm-cli-outputs.md 5.2: `normal`, `control`, `vio-service` verified; the rest ours). */
const FLAG_NAMES: readonly Record<string, string>[] = [
  { s: 'starting' },
  { n: 'normal', t: 'transition', d: 'degraded' },
  { d: 'delayed-reconfig', r: 'memory-dr' },
  { c: 'control' },
  { v: 'vio-service' },
  { s: 'source', t: 'target', e: 'error' },
];

export function flagsSpelled(flags: string): string {
  return [...flags]
    .map((ch, i) => FLAG_NAMES[i]?.[ch])
    .filter((x): x is string => x !== undefined)
    .join(',');
}

/** The Items of a Content (every section), and the first of a type. */
export const itemsOf = (c: Content | undefined, type?: string): Item[] =>
  (c?.sections ?? []).flatMap((s) => s.items).filter((i) => type === undefined || i.type === type);
export const firstItem = (c: Content | undefined, type: string): Item | undefined => itemsOf(c, type)[0];

/** A CPU set as Oracle writes it: `(0, 1, 2, 3)`. */
export const cpuset = (pids: readonly (string | number)[]): string => `(${pids.join(', ')})`;
