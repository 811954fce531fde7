/**
 * Slows down password guessing: after each failed login from an address, the
 * next attempt from it waits twice as long (base, 2x, 4x ... up to a cap).
 * An address that stays quiet long enough is forgotten.
 */
export interface ThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  forgetAfterMs: number;
  /** Addresses remembered at most (oldest forgotten first), so a flood cannot grow the table. */
  maxAddresses: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { baseDelayMs: 250, maxDelayMs: 8000, forgetAfterMs: 15 * 60_000, maxAddresses: 10_000 };

export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /** How long the next attempt from `address` must wait, in ms. */
  delayFor(address: string): number {
    const f = this.failures.get(address);
    if (!f) return 0;
    if (this.now() - f.last > this.options.forgetAfterMs) {
      this.failures.delete(address);
      return 0;
    }
    return Math.min(this.options.baseDelayMs * 2 ** (f.count - 1), this.options.maxDelayMs);
  }

  /** Record a failure; returns how many in a row from this address. */
  failed(address: string): number {
    const f = this.failures.get(address);
    const count = (f && this.now() - f.last <= this.options.forgetAfterMs ? f.count : 0) + 1;
    this.failures.delete(address);
    this.failures.set(address, { count, last: this.now() });
    if (this.failures.size > this.options.maxAddresses) {
      this.failures.delete(this.failures.keys().next().value!);
    }
    return count;
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}
