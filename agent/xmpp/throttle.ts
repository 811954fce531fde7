/**
 * When a password may be checked (SASL PLAIN). The policy:
 *
 * - Guessing is slow per address and per user name. A wrong password counts
 *   one failure for its address (IPv6: its /64) and one for its user name.
 *   While a key has failures, checks under it start base, 2x, 4x ... up to the
 *   cap apart (250 ms ... 8 s), and a check in flight counts as one more
 *   failure for that spacing until its answer is known. At most
 *   `maxInFlightPerKey` checks of one key run at once: opening many
 *   connections in parallel gains nothing. Failures are forgotten after
 *   `forgetAfterMs` without a new one.
 * - Honest logins are not starved:
 *   - the delay of a user name applies to that name, the delay of an address
 *     to that address: a user logging in under another name from another
 *     address waits for neither;
 *   - a user name that logged in from an address before (within
 *     `knownPairMs`) is, from that address, held only to the failures of that
 *     very pair: guessing at other names from the same address, or at the same
 *     name from other addresses, does not delay it;
 *   - at most `maxConcurrentChecks` scrypt checks run at once (each takes a
 *     thread-pool thread for about 50 ms; the file system needs that pool
 *     too). Known pairs go first; the others are taken round robin by
 *     address: a flood from one address queues behind its own attempts, not
 *     in front of everyone else's.
 * - A success clears the failures of that name from that address only, so one
 *   valid account cannot reset an address's record of guesses at others.
 * - Every table is bounded (`maxKeys` entries, least recently used forgotten first).
 */
import { isValidUserName } from '../auth/users.ts';

export interface ThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  forgetAfterMs: number;
  /** Entries per table (addresses, user names, known pairs) at most. */
  maxKeys: number;
  /** Checks of one address, one user name or one known pair running at once. */
  maxInFlightPerKey: number;
  /** Password checks running at once, for everybody. */
  maxConcurrentChecks: number;
  /** How long a successful login makes its (address, user name) pair known. */
  knownPairMs: number;
}

export const DEFAULT_THROTTLE: Readonly<ThrottleOptions> = Object.freeze({
  baseDelayMs: 250,
  maxDelayMs: 8000,
  forgetAfterMs: 15 * 60_000,
  maxKeys: 10_000,
  maxInFlightPerKey: 2,
  maxConcurrentChecks: 2,
  knownPairMs: 7 * 24 * 3600_000,
});

/** The record of one key: an address, a user name, or a known (address, user name) pair. */
class Gate {
  failures = 0;
  lastFailure = 0;
  inFlight = 0;
  /** No new check under this key starts before this time. */
  nextAt = 0;
}

/** A map that forgets its least recently used entries beyond a size. */
class Recent<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
}

export interface LoginOutcome<T> {
  /** What the check returned; null when the password was wrong or nothing was checked. */
  result: T | null;
  /** The attempt was given up before its turn (its connection went away): nothing was checked. */
  dropped: boolean;
  addressFailures: number;
  userFailures: number;
  /** At least how long the next check for this user name from this address will wait. */
  nextDelayMs: number;
}

interface Attempt {
  address: string;
  user: string;
  check: () => Promise<unknown>;
  alive: () => boolean;
  resolve: (o: LoginOutcome<unknown>) => void;
  reject: (err: unknown) => void;
}

const INVALID_NAME = '\u0000invalid';

export class LoginThrottle {
  private readonly addresses: Recent<Gate>;
  private readonly users: Recent<Gate>;
  private readonly pairs: Recent<Gate>;
  /** Pairs that logged in, and until when they count as known. */
  private readonly known: Recent<number>;
  /** Waiting attempts by address; the Map's order is the round robin. */
  private readonly waiting = new Map<string, Attempt[]>();
  private running = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {
    this.addresses = new Recent(options.maxKeys);
    this.users = new Recent(options.maxKeys);
    this.pairs = new Recent(options.maxKeys);
    this.known = new Recent(options.maxKeys);
  }

  /** Password checks running now. */
  get checking(): number {
    return this.running;
  }

  /** Attempts waiting for their turn. */
  get queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  /**
   * Runs `check` (a password check: its result, or null when wrong) once the
   * policy lets this attempt go. `alive` says whether anyone still waits for the
   * answer; an attempt whose connection closed is dropped unchecked.
   */
  run<T>(address: string, user: string, check: () => Promise<T | null>, alive: () => boolean): Promise<LoginOutcome<T>> {
    return new Promise((resolve, reject) => {
      const attempt: Attempt = { address, user, check, alive, resolve: resolve as (o: LoginOutcome<unknown>) => void, reject };
      const q = this.waiting.get(address);
      if (q) q.push(attempt);
      else this.waiting.set(address, [attempt]);
      this.pump();
    });
  }

  private delay(failures: number): number {
    return failures <= 0 ? 0 : Math.min(this.options.baseDelayMs * 2 ** (failures - 1), this.options.maxDelayMs);
  }

  private gate(table: Recent<Gate>, key: string, now: number): Gate {
    let g = table.get(key);
    if (!g) table.set(key, (g = new Gate()));
    else if (g.failures > 0 && g.inFlight === 0 && now - g.lastFailure > this.options.forgetAfterMs) {
      g.failures = 0;
      g.nextAt = 0;
    }
    return g;
  }

  private userKey(user: string): string {
    // Names that cannot exist share one record: they cannot grow the table.
    return isValidUserName(user) ? user : INVALID_NAME;
  }

  private pairKey(a: Attempt): string {
    return `${a.address}\u0000${this.userKey(a.user)}`;
  }

  private isKnown(a: Attempt, now: number): boolean {
    return (this.known.get(this.pairKey(a)) ?? 0) > now;
  }

  /** The records this attempt is held to. */
  private gatesOf(a: Attempt, now: number): Gate[] {
    if (this.isKnown(a, now)) return [this.gate(this.pairs, this.pairKey(a), now)];
    return [this.gate(this.addresses, a.address, now), this.gate(this.users, this.userKey(a.user), now)];
  }

  private ready(gates: Gate[], now: number): boolean {
    return gates.every((g) => g.inFlight < this.options.maxInFlightPerKey && g.nextAt <= now);
  }

  /** Start what may start now; arrange to look again when the next spacing runs out. */
  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    this.dropDead();
    while (this.running < this.options.maxConcurrentChecks) {
      const next = this.pick(now);
      if (!next) break;
      this.start(next.attempt, next.gates, now);
    }
    if (this.running >= this.options.maxConcurrentChecks) return; // a finishing check pumps again
    let soonest = Infinity;
    for (const q of this.waiting.values()) {
      for (const a of q) {
        const gates = this.gatesOf(a, now);
        if (gates.every((g) => g.inFlight < this.options.maxInFlightPerKey)) soonest = Math.min(soonest, ...gates.map((g) => g.nextAt));
      }
    }
    if (soonest !== Infinity) this.timer = setTimeout(() => this.pump(), Math.max(1, soonest - now)).unref();
  }

  private dropDead(): void {
    for (const [address, q] of this.waiting) {
      const live = q.filter((a) => {
        if (a.alive()) return true;
        a.resolve({ result: null, dropped: true, addressFailures: 0, userFailures: 0, nextDelayMs: 0 });
        return false;
      });
      if (live.length === 0) this.waiting.delete(address);
      else if (live.length !== q.length) this.waiting.set(address, live);
    }
  }

  /** The first ready attempt of a known pair, else the first ready one, visiting addresses round robin. */
  private pick(now: number): { attempt: Attempt; gates: Gate[] } | undefined {
    return this.pickFrom(now, true) ?? this.pickFrom(now, false);
  }

  private pickFrom(now: number, knownOnly: boolean): { attempt: Attempt; gates: Gate[] } | undefined {
    for (const [address, q] of this.waiting) {
      for (let i = 0; i < q.length; i++) {
        if (knownOnly && !this.isKnown(q[i]!, now)) continue;
        const gates = this.gatesOf(q[i]!, now);
        if (!this.ready(gates, now)) continue;
        const [attempt] = q.splice(i, 1);
        // To the back of the round: the other addresses go first next time.
        this.waiting.delete(address);
        if (q.length > 0) this.waiting.set(address, q);
        return { attempt: attempt!, gates };
      }
    }
    return undefined;
  }

  private start(a: Attempt, gates: Gate[], now: number): void {
    for (const g of gates) {
      g.inFlight++;
      // Until its answer is known, a check in flight counts as one more failure.
      if (g.failures > 0) g.nextAt = Math.max(g.nextAt, now + this.delay(g.failures + g.inFlight));
    }
    this.running++;
    const finish = () => {
      this.running--;
      for (const g of gates) g.inFlight--;
    };
    a.check().then(
      (result) => {
        finish();
        a.resolve(result !== null && result !== undefined ? this.succeeded(a, result) : this.failed(a));
        this.pump();
      },
      (err: unknown) => {
        finish();
        a.reject(err);
        this.pump();
      },
    );
  }

  private succeeded(a: Attempt, result: unknown): LoginOutcome<unknown> {
    const now = this.now();
    const pair = this.pairKey(a);
    this.known.set(pair, now + this.options.knownPairMs);
    const g = this.gate(this.pairs, pair, now);
    g.failures = 0;
    g.nextAt = 0;
    return { result, dropped: false, addressFailures: 0, userFailures: 0, nextDelayMs: 0 };
  }

  private failed(a: Attempt): LoginOutcome<unknown> {
    const now = this.now();
    const record = (g: Gate) => {
      g.failures++;
      g.lastFailure = now;
      g.nextAt = Math.max(g.nextAt, now + this.delay(g.failures));
      return g;
    };
    const address = record(this.gate(this.addresses, a.address, now));
    const user = record(this.gate(this.users, this.userKey(a.user), now));
    const known = this.isKnown(a, now);
    const pair = known ? record(this.gate(this.pairs, this.pairKey(a), now)) : undefined;
    const nextAt = pair ? pair.nextAt : Math.max(address.nextAt, user.nextAt);
    return { result: null, dropped: false, addressFailures: address.failures, userFailures: user.failures, nextDelayMs: Math.max(0, nextAt - now) };
  }

  /** The server is closing: give up every waiting attempt and stop the wake-up timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = [...this.waiting.values()].flat();
    this.waiting.clear();
    for (const a of waiting) a.resolve({ result: null, dropped: true, addressFailures: 0, userFailures: 0, nextDelayMs: 0 });
  }
}
