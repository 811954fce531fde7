/**
 * The bounds of the domain model, in one place: each keeps one request's work
 * and the saved state small enough that a change stays quick and the file can
 * always be loaded again. The README's limits table lists them.
 */

/** Domains on one machine, the primary included: Oracle's figure for the T4 the built-in machine is (later platforms allow 256). */
export const DEFAULT_MAX_DOMAINS = 128;
/** The most a machine file may raise `maxDomains` to (four times Oracle's largest platform). */
export const MAX_DOMAINS_CEILING = 1024;

/** Automatically assigned MAC addresses: Oracle's range, 00:14:4f:f8:00:00 to 00:14:4f:fb:ff:ff. */
export const AUTO_MAC_COUNT = 262_144;
/** Automatically assigned domain host ids: 0x84f80000 to 0x84fbffff (Oracle's pattern: 0x84 and a MAC address's last three bytes). */
export const AUTO_HOSTID_COUNT = 262_144;

/**
 * Variables: OpenBoot's are short (`boot-device`, `auto-boot?`); its largest,
 * `nvramrc`, lives in a few KiB of NVRAM. 4 KiB per value holds a real nvramrc
 * script, and one domain's variables (1 MiB at most) stay under the state limit.
 */
export const MAX_VARIABLE_NAME_BYTES = 128;
export const MAX_VARIABLE_VALUE_BYTES = 4096;
export const MAX_VARIABLES_PER_DOMAIN = 256;

/**
 * Virtual disks, and virtual networks, per domain (each kind apart). Every one
 * is a channel of the guest; real guests use a handful. Checked per device so
 * that one request naming thousands stops early.
 */
export const MAX_DEVICES_PER_DOMAIN = 256;

/**
 * The saved state (`domains.json`, SP configurations included). Every change
 * copies, serializes and fsyncs the whole of it: at 7.4 MB that took 65 to
 * 160 ms per change on the 2-core development machine. 8 MiB still holds
 * hundreds of domains with several SP configurations.
 */
export const MAX_STATE_BYTES = 8 * 1024 * 1024;

/** Counts and sizes the model keeps as JavaScript numbers: beyond this they would not load back exactly. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;
