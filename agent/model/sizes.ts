/** Sizes as users write them (`4G`, `512M`, `8192`): contract.md's K/M/G/T suffixes, powers of 1024. */
const UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A size read from text: its bytes, or why it is not one (not written as a size, or beyond what a number holds exactly). */
export type SizeReading = { bytes: number } | { problem: 'syntax' | 'range' };

export function readSize(text: string): SizeReading {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$/i.exec(text);
  if (!m) return { problem: 'syntax' };
  const bytes = Math.round(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  return Number.isSafeInteger(bytes) ? { bytes } : { problem: 'range' };
}

/** Bytes, or null when the text is not a size. */
export function parseSize(text: string): number | null {
  const r = readSize(text);
  return 'bytes' in r ? r.bytes : null;
}

/** The largest unit that divides evenly: 4294967296 -> `4G`, as ldm prints sizes. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const u = UNITS[unit]!;
    if (bytes >= u && bytes % u === 0) return `${bytes / u}${unit}`;
  }
  return `${bytes}`;
}
