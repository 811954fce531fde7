/** Sizes as users write them (`4G`, `512M`, `8192`): contract.md's K/M/G/T suffixes, powers of 1024. */
const UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Bytes, or null when the text is not a size. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$/i.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : null;
}

/** The largest unit that divides evenly: 4294967296 -> `4G`, as ldm prints sizes. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const u = UNITS[unit]!;
    if (bytes >= u && bytes % u === 0) return `${bytes / u}${unit}`;
  }
  return `${bytes}`;
}
