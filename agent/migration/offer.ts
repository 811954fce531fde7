/**
 * What the source manager tells the target in phase 1 (migration.md, "The five
 * phases"): who it is, what machine it runs on, and the domain to move, with
 * everything the target's checks (checks.ts) and its prepare step need. Plain
 * JSON: it travels inside an LDM document on the migration connection.
 */
import type { DomainConfig } from '../model/types.ts';
import type { GuestRuntime, RunState } from '../hypervisor/hypervisor.ts';

/** The source machine, as far as the checks compare machines. */
export interface MachineSummary {
  hostname: string;
  /** ldm-agent's migration protocol version; the target refuses one it does not speak. */
  protocol: number;
  /** The Logical Domains Manager version the machine file claims (e.g. `3.6`). */
  managerVersion: string;
  firmware: string;
  platform: string;
  cpu: { type: string; frequencyMHz: number; threadsPerCore: number };
  /** A delayed reconfiguration is pending on the source machine (refused: migration.md). */
  delayedReconf: boolean;
  /** The machine's power policy; `elastic` refuses migration. */
  powerPolicy: string;
}

/** The running guest, for an active domain. */
export interface GuestSummary {
  runState: RunState;
  /** Guest OS release (`s10u9`, `s11`): older than s10u9 is cold migration only. */
  os: string;
  /** Pages of guest memory (memory / PAGE_SIZE). */
  pages: number;
  /** Pages holding data now (what the first pass will send at most). */
  touchedPages: number;
}

/** A virtual disk back end (a volume of a virtual disk server) as the source has it. */
export interface VdiskBackend {
  volume: string;
  service: string;
  options: string[];
  mpgroup?: string;
}

export interface MigrationOffer {
  machine: MachineSummary;
  /** The domain as the source has it: constraints, bindings (real addresses), devices. */
  domain: DomainConfig;
  /** Its name on the target (rename on migration); usually domain.name. */
  targetName: string;
  /** -n: check only. */
  dryRun: boolean;
  /** -f: go past the CPU-type check. */
  force: boolean;
  /** Present for an active domain (live migration); absent for bound and inactive ones (cold). */
  guest?: GuestSummary;
  /**
   * The back ends of the domain's virtual disks as the source's virtual disk servers
   * have them (one per distinct volume@service): an active domain's options and
   * mpgroup must be the same on the target (checks.ts). Absent: not compared.
   */
  vdiskBackends?: VdiskBackend[];
  /** The guest's runtime, sent at the end of phase 4. */
  runtime?: GuestRuntime;
}

/** Version of the agents' migration conversation (offer, page stream, handoff). */
export const MIGRATION_PROTOCOL = 1;
