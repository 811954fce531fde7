/**
 * Who may connect to the XML interface, and how refusals are logged.
 *
 * - The local Unix socket has an allowance of its own, so a flood over TCP
 *   never locks the administrator out.
 * - TCP has a total allowance and one per remote address (an IPv6 peer counts
 *   per /64: one host commonly holds a whole prefix).
 * - When an allowance is used up, the new connection takes the place of one
 *   that has not logged in and has been silent for a while (the longest silent
 *   first); only when there is none is the new one refused. Idle peers thus
 *   never keep others out, while a peer busy logging in keeps its place. At
 *   the address's own allowance the place is taken from that address. At the
 *   total it is taken from the address holding the most connections, if that
 *   holds more than the new one's address would, silent or not: a few busy
 *   addresses cannot hold the total against everyone else.
 * - Refusals are counted, not logged one by one: the first of a burst is
 *   logged at once, the rest as one line per interval with their counts.
 */
import { isIPv6 } from 'node:net';
import type { Logger } from '../log.ts';

export interface AdmissionLimits {
  /** TCP connections at once, all addresses together. */
  maxConnections: number;
  /** Connections to the local Unix socket at once, apart from TCP. */
  maxLocalConnections: number;
  /** TCP connections at once from one address (IPv6: one /64). */
  maxConnectionsPerAddress: number;
  /** A connection that has not logged in and sent nothing for this long may give its place to a new one. */
  replaceSilentMs: number;
}

export const DEFAULT_ADMISSION: Readonly<AdmissionLimits> = Object.freeze({
  maxConnections: 256,
  maxLocalConnections: 64,
  maxConnectionsPerAddress: 32,
  replaceSilentMs: 1000,
});

/** What admission tracks of one open connection. */
export interface Slot {
  readonly local: boolean;
  /** The address key (see addressKey); 'unix' for the local socket. */
  readonly key: string;
  /** When the peer last sent anything (ms since the epoch). */
  lastInput: number;
  /** The agent owes the peer an answer (its login is being checked): it is not idle, however silent. */
  waiting: boolean;
  /** Logged in (or a local session): never replaced. */
  settled(): boolean;
}

export type RefusalReason = 'local' | 'total' | 'address';

/** Admitted (maybe in the place of `replace`, at the allowance `at`), or refused at an allowance. */
export type Decision<S extends Slot> = { admit: true; replace?: S; at?: RefusalReason } | { admit: false; reason: RefusalReason; limit: number };

/**
 * The key connections and login failures are counted under: the IPv4 address
 * (also when written IPv4-mapped), or the first 64 bits of an IPv6 address.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

export class Admission<S extends Slot> {
  private readonly tcp = new Set<S>();
  private readonly local = new Set<S>();
  private readonly byKey = new Map<string, Set<S>>();

  constructor(readonly limits: AdmissionLimits) {}

  /** Connections now held by the address `key`. */
  held(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  /** Whether a new connection may come in, and whose place it takes if an allowance is used up. */
  decide(local: boolean, key: string, now: number): Decision<S> {
    if (local) {
      if (this.local.size < this.limits.maxLocalConnections) return { admit: true };
      const replace = this.silentest(this.local, now);
      return replace ? { admit: true, replace, at: 'local' } : { admit: false, reason: 'local', limit: this.limits.maxLocalConnections };
    }
    const same = this.byKey.get(key);
    if (same && same.size >= this.limits.maxConnectionsPerAddress) {
      // Replacing one of the same address keeps the total unchanged.
      const replace = this.silentest(same, now);
      return replace ? { admit: true, replace, at: 'address' } : { admit: false, reason: 'address', limit: this.limits.maxConnectionsPerAddress };
    }
    if (this.tcp.size < this.limits.maxConnections) return { admit: true };
    const replace = this.fromBusiest(same?.size ?? 0);
    return replace ? { admit: true, replace, at: 'total' } : { admit: false, reason: 'total', limit: this.limits.maxConnections };
  }

  /**
   * At the total: a connection, not logged in and not being checked, of the
   * address holding the most connections, provided it holds more than the new
   * connection's address would (`mine` + 1); the longest silent of them first.
   * Silence is not asked for here: what counts is that a few addresses cannot
   * hold the whole total against everyone else, and since a place only ever
   * goes to a poorer address, the shares even out instead of churning.
   */
  private fromBusiest(mine: number): S | undefined {
    let best: S | undefined;
    let bestCount = 0;
    for (const s of this.tcp) {
      if (s.settled() || s.waiting) continue;
      const count = this.byKey.get(s.key)?.size ?? 0;
      if (count <= mine + 1) continue;
      if (!best || count > bestCount || (count === bestCount && s.lastInput < best.lastInput)) {
        best = s;
        bestCount = count;
      }
    }
    return best;
  }

  add(slot: S): void {
    if (slot.local) return void this.local.add(slot);
    this.tcp.add(slot);
    let same = this.byKey.get(slot.key);
    if (!same) this.byKey.set(slot.key, (same = new Set()));
    same.add(slot);
  }

  /** Forget a slot; safe to call more than once. */
  remove(slot: S): void {
    if (slot.local) return void this.local.delete(slot);
    this.tcp.delete(slot);
    const same = this.byKey.get(slot.key);
    if (same?.delete(slot) && same.size === 0) this.byKey.delete(slot.key);
  }

  /** The connection silent longest among those that may be replaced, if any. */
  private silentest(among: Set<S>, now: number): S | undefined {
    let best: S | undefined;
    for (const s of among) {
      if (s.settled() || s.waiting || now - s.lastInput < this.limits.replaceSilentMs) continue;
      if (!best || s.lastInput < best.lastInput) best = s;
    }
    return best;
  }
}

export type RefusalKind = RefusalReason | 'replaced';

/**
 * Refused and replaced connections, summed up: the first of a burst is logged
 * at once, then at most one line per interval with the counts, so a flood of
 * connections cannot become a flood of log lines.
 */
export class RefusalLog {
  private counts: Record<RefusalKind, number> = { local: 0, total: 0, address: 0, replaced: 0 };
  private readonly addresses = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  note(kind: RefusalKind, address: string, limit: number): void {
    if (!this.timer) {
      this.log.warn(kind === 'replaced' ? 'connection replaced: limit reached' : 'connection refused: limit reached', { address, limit: kind, max: limit });
      this.timer = setTimeout(() => this.flush(), this.intervalMs).unref();
      return;
    }
    this.counts[kind]++;
    // Only the busiest addresses are worth naming; the table stays small.
    if (this.addresses.has(address) || this.addresses.size < 1000) this.addresses.set(address, (this.addresses.get(address) ?? 0) + 1);
  }

  private flush(): void {
    const { local, total, address, replaced } = this.counts;
    if (local + total + address + replaced === 0) {
      this.timer = undefined;
      return;
    }
    const top = [...this.addresses].sort((a, b) => b[1] - a[1]).slice(0, 3);
    this.log.warn('connections refused or replaced at their limits', {
      seconds: this.intervalMs / 1000,
      refusedTotal: total || undefined,
      refusedPerAddress: address || undefined,
      refusedLocal: local || undefined,
      replaced: replaced || undefined,
      addresses: this.addresses.size,
      busiest: top.map(([a, n]) => `${a} (${n})`),
    });
    this.counts = { local: 0, total: 0, address: 0, replaced: 0 };
    this.addresses.clear();
    this.timer = setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
