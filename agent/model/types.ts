/**
 * The persistent state of the Logical Domains Manager: what administrators
 * asked for (constraints), what is bound to each domain (bindings), and the
 * services the domains provide. Plain JSON-able data: store.ts writes it,
 * ldm.ts changes it, listings read it.
 */

/**
 * Domain states (Oracle's): inactive (constraints only), bound (resources
 * allocated), active (running). start/stop move between bound and active,
 * bind/unbind between inactive and bound.
 */
export type DomainState = 'inactive' | 'bound' | 'active';

export type FailurePolicy = 'ignore' | 'panic' | 'reset' | 'stop';
export type CpuArch = 'native' | 'generic' | 'migration-class1';

/** A block of bound memory: real address (as the guest sees it), physical address, size in bytes. */
export interface MemoryBlock {
  ra: number;
  pa: number;
  size: number;
}

export interface VdiskConfig {
  name: string;
  /** The back end: volume `volume` of virtual disk server `service`. */
  volume: string;
  service: string;
  timeout?: number;
  /** Device id in the guest, assigned at add time. */
  id: number;
}

export interface VnetConfig {
  name: string;
  /** The virtual switch it connects to. */
  service: string;
  mac: string;
  pvid?: number;
  vid?: string;
  mode?: string;
  linkprop?: string;
  id: number;
}

export interface VdsVolume {
  name: string;
  blockDev: string;
  options: string[];
  mpgroup?: string;
}

export interface VdsConfig {
  name: string;
  /** The domain providing the service. */
  domain: string;
  volumes: VdsVolume[];
}

export interface VswConfig {
  name: string;
  domain: string;
  mac: string;
  netDev?: string;
  mode?: string;
  pvid?: number;
  vid?: string;
  mtu?: number;
  linkprop?: string;
  interVnetLink?: string;
  id: number;
}

export interface VccConfig {
  name: string;
  domain: string;
  minPort: number;
  maxPort: number;
}

/** What is allocated to a bound or active domain. */
export interface Bindings {
  /** Strand ids (core = strand / threadsPerCore). */
  strands: number[];
  memory: MemoryBlock[];
  /** Crypto units by core id. */
  mau: number[];
  /** The console port from the vcc, when the machine has one. */
  consolePort?: number;
  consoleService?: string;
}

/** Changes to the primary that wait for its reboot (delayed reconfiguration). */
export interface DelayedReconf {
  memory?: number;
  /** The physical devices the domain will own after its reboot. */
  io?: string[];
}

export interface DomainConfig {
  name: string;
  uuid: string;
  hostid: string;
  mac: string;
  state: DomainState;
  failurePolicy: FailurePolicy;
  /** Master domains (failure-policy applies when one of them fails). */
  master: string[];
  cpuArch: CpuArch;
  perfCounters: string;
  // Constraints: what was asked.
  vcpus: number;
  /** Whole cores asked with wcore (0: plain strands). */
  wholeCores: number;
  /** Memory in bytes. */
  memory: number;
  mau: number;
  io: string[];
  vdisks: VdiskConfig[];
  vnets: VnetConfig[];
  console: { port?: number; service?: string; group?: string; log?: boolean };
  /** OpenBoot and simulation variables, in insertion order. */
  variables: [string, string][];
  bindings?: Bindings;
  delayedReconf?: DelayedReconf;
  /** Next device id for vdisks and vnets. */
  nextDeviceId: number;
}

export interface SpConfig {
  name: string;
  /** JSON of the domains at the time it was saved. */
  saved: string;
}

export interface LdmState {
  /** Format version of the state file. */
  version: 1;
  domains: DomainConfig[];
  vds: VdsConfig[];
  vsw: VswConfig[];
  vcc: VccConfig[];
  spconfigs: SpConfig[];
  /** The configuration the SP will boot next (`current` in list-spconfig). */
  nextSpconfig: string;
  /** Next MAC address suffix (Oracle's 00:14:4f range). */
  nextMac: number;
  nextHostid: number;
}
