/**
 * The guests of active domains, as the manager sees them: booted on
 * start-domain to the OS, or to the OpenBoot `ok` prompt when `auto-boot?`
 * is false (contract.md "Simulated guests"); `sim-state` moves a running guest.
 */
import type { GuestHost } from '../model/ldm.ts';
import type { DomainConfig } from '../model/types.ts';

export type GuestState = 'solaris' | 'openboot' | 'kmdb';

const variable = (d: DomainConfig, name: string) => d.variables.find(([k]) => k === name)?.[1];

/** Where a guest is after booting, from its variables. */
export function bootState(d: DomainConfig): GuestState {
  if (variable(d, 'auto-boot?')?.toLowerCase() === 'false') return 'openboot';
  const asked = variable(d, 'sim-state');
  return asked === 'openboot' || asked === 'kmdb' ? asked : 'solaris';
}

export class Guests implements GuestHost {
  private readonly running = new Map<string, GuestState>();

  start(d: DomainConfig): void {
    this.running.set(d.name, bootState(d));
  }

  /** `sim-state` moves a running guest between the OS, the ok prompt and the debugger. */
  reconfigure(d: DomainConfig): void {
    const asked = variable(d, 'sim-state');
    if (this.running.has(d.name) && (asked === 'solaris' || asked === 'openboot' || asked === 'kmdb')) this.running.set(d.name, asked);
  }

  stop(name: string): void {
    this.running.delete(name);
  }

  status(name: string): GuestState | undefined {
    return this.running.get(name);
  }
}
