/**
 * The daemon's settings (contract.md): command-line options over `--config
 * FILE` (JSON with the same keys) over the defaults.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ErrorCodes, LdmError } from './errors.ts';
import { configMessages, discoveryMessages } from './messages.ts';
import { parseSize } from './model/sizes.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface MigrationTuning {
  downtimeLimitMs: number;
  maxBandwidth: number | null;
  autoConverge: boolean;
  maxIterations: number;
  channels: number;
  /**
   * How long a migration peer may stay silent, or leave what we write unread, before
   * the migration fails (source) or is dropped (target): a cut link ends in this time,
   * not in TCP's quarter of an hour. Steps that take the target work wait twice as long.
   */
  peerTimeoutMs: number;
}

/**
 * Connection and login bounds of the XML interface (config key `connections`);
 * each one left out keeps the service's default (README, "Limits").
 */
export interface ConnectionBounds {
  maxConnections: number;
  maxLocalConnections: number;
  maxConnectionsPerAddress: number;
  firstByteMs: number;
  tlsMs: number;
  handshakeMs: number;
  maxConcurrentLoginChecks: number;
}

export interface AgentConfig {
  listen: HostPort;
  http: HostPort | null;
  /** Serve the web app over HTTPS with the agent's server certificate (`--http-tls`, key `httpTls`). */
  httpTls: boolean;
  state: string;
  certs: string;
  machine: string | undefined;
  hostname: string | undefined;
  localTcp: boolean;
  migration: MigrationTuning;
  connections: Partial<ConnectionBounds>;
  /**
   * Bytes of resident memory the simulated guests may hold together (`--guest-memory
   * SIZE`, config key `guestMemory`: a size such as "4G", or bytes); undefined: the
   * simulator's default from the host's memory (hypervisor/budget.ts).
   */
  guestMemory: number | undefined;
  /** Answer discovery requests (`--discovery on|off`, config key `discovery`; agent/discovery.ts). */
  discovery: boolean;
  /** The UDP port discovery listens on (`--discovery-port N`, key `discoveryPort`): 64535 unless tests or a second group need another. */
  discoveryPort: number;
}

export const DEFAULT_CONFIG: AgentConfig = {
  listen: { host: '127.0.0.1', port: 6482 },
  http: { host: '127.0.0.1', port: 8482 },
  httpTls: false,
  state: './var',
  certs: './certs',
  machine: undefined,
  hostname: undefined,
  localTcp: false,
  migration: { downtimeLimitMs: 300, maxBandwidth: null, autoConverge: true, maxIterations: 30, channels: 1, peerTimeoutMs: 30_000 },
  connections: {},
  guestMemory: undefined,
  discovery: true,
  discoveryPort: 64535,
};

const bad = (text: string) => new LdmError(ErrorCodes.USAGE, text);

/** `HOST:PORT`, `[v6]:PORT` or `:PORT`; port 0 asks for any free port. */
export function parseHostPort(text: string, option: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw bad(configMessages.badHostPort(option, text));
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function fromFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LdmError(ErrorCodes.FILE, configMessages.cannotRead(file, (err as Error).message));
  }
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('expected a JSON object');
    return json as Record<string, unknown>;
  } catch (err) {
    throw new LdmError(ErrorCodes.FILE, configMessages.badFile(file, (err as Error).message));
  }
}

const KNOWN_KEYS = new Set(['listen', 'http', 'httpTls', 'http-tls', 'state', 'certs', 'machine', 'hostname', 'localTcp', 'local-tcp', 'migration', 'connections', 'guestMemory', 'guest-memory', 'discovery', 'discoveryPort', 'discovery-port']);

/** `--discovery` or the `discovery` key: on/off (or true/false in a file). */
function discoverySwitch(value: unknown): boolean {
  if (value === undefined || value === true || value === 'on') return true;
  if (value === false || value === 'off') return false;
  throw bad(discoveryMessages.badSwitch(String(value)));
}

function discoveryPort(value: unknown): number {
  if (value === undefined) return DEFAULT_CONFIG.discoveryPort;
  const port = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw bad(discoveryMessages.badPort(String(value)));
  return port as number;
}

/** `--guest-memory` or the `guestMemory` key: a positive size ("512M", "4G") or a positive whole number of bytes. */
function guestMemory(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const bytes = typeof value === 'string' ? parseSize(value) : typeof value === 'number' ? value : null;
  if (bytes === null || !Number.isSafeInteger(bytes) || bytes <= 0) throw bad(configMessages.badGuestMemory(String(value)));
  return bytes;
}

/** What each key of the `migration` object must hold: a check, and the words for its refusal. */
const MIGRATION_KEYS: Record<keyof MigrationTuning, { ok: (v: unknown) => boolean; expected: string }> = {
  downtimeLimitMs: { ok: (v) => Number.isInteger(v) && (v as number) > 0, expected: 'a positive whole number of milliseconds' },
  maxBandwidth: { ok: (v) => v === null || (Number.isSafeInteger(v) && (v as number) > 0), expected: 'a positive whole number of bytes per second, or null' },
  autoConverge: { ok: (v) => typeof v === 'boolean', expected: 'true or false' },
  maxIterations: { ok: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1000, expected: 'a whole number from 1 to 1000' },
  channels: { ok: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 16, expected: 'a whole number from 1 to 16' },
  peerTimeoutMs: { ok: (v) => Number.isInteger(v) && (v as number) >= 500 && (v as number) <= 600_000, expected: 'a whole number of milliseconds from 500 to 600000' },
};

/** The `migration` object of a configuration file, checked key by key over the defaults. */
function migrationTuning(value: unknown, file: string | undefined): MigrationTuning {
  if (value === undefined) return { ...DEFAULT_CONFIG.migration };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(configMessages.notAnObject('migration'));
  const tuning: Record<string, unknown> = { ...DEFAULT_CONFIG.migration };
  for (const [key, v] of Object.entries(value)) {
    const rule = MIGRATION_KEYS[key as keyof MigrationTuning];
    if (!Object.hasOwn(MIGRATION_KEYS, key)) throw bad(configMessages.unknownKey(file ?? '--config', `migration.${key}`));
    if (!rule.ok(v)) throw bad(configMessages.badValue(`migration.${key}`, JSON.stringify(v), rule.expected));
    tuning[key] = v;
  }
  return tuning as unknown as MigrationTuning;
}

const wholeIn = (lo: number, hi: number) => ({
  ok: (v: unknown) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi,
  expected: `a whole number from ${lo} to ${hi}`,
});

/** What each key of the `connections` object must hold. */
const CONNECTION_KEYS: Record<keyof ConnectionBounds, { ok: (v: unknown) => boolean; expected: string }> = {
  maxConnections: wholeIn(1, 65536),
  maxLocalConnections: wholeIn(1, 65536),
  maxConnectionsPerAddress: wholeIn(1, 65536),
  firstByteMs: wholeIn(100, 600_000),
  tlsMs: wholeIn(100, 600_000),
  handshakeMs: wholeIn(100, 600_000),
  maxConcurrentLoginChecks: wholeIn(1, 64),
};

/** The `connections` object of a configuration file, checked key by key. */
function connectionBounds(value: unknown, file: string | undefined): Partial<ConnectionBounds> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(configMessages.notAnObject('connections'));
  const bounds: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!Object.hasOwn(CONNECTION_KEYS, key)) throw bad(configMessages.unknownKey(file ?? '--config', `connections.${key}`));
    const rule = CONNECTION_KEYS[key as keyof ConnectionBounds];
    if (!rule.ok(v)) throw bad(configMessages.badValue(`connections.${key}`, JSON.stringify(v), rule.expected));
    bounds[key] = v;
  }
  return bounds as Partial<ConnectionBounds>;
}

/** Settings from argv (the words after `ldm-agent`). Throws LdmError (USAGE or FILE). */
export function loadConfig(argv: string[]): AgentConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        http: { type: 'string' },
        'http-tls': { type: 'boolean' },
        state: { type: 'string' },
        certs: { type: 'string' },
        machine: { type: 'string' },
        hostname: { type: 'string' },
        config: { type: 'string' },
        'local-tcp': { type: 'boolean' },
        'guest-memory': { type: 'string' },
        discovery: { type: 'string' },
        'discovery-port': { type: 'string' },
      },
    }));
  } catch (err) {
    throw bad((err as Error).message);
  }
  const file = values.config ? fromFile(values.config) : {};
  for (const key of Object.keys(file)) {
    if (!KNOWN_KEYS.has(key)) throw bad(configMessages.unknownKey(values.config!, key));
  }
  const pick = (key: string): string | undefined => {
    const v = (values as Record<string, unknown>)[key] ?? file[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw bad(configMessages.notAString(key));
    return v;
  };
  const http = pick('http');
  const migration = migrationTuning(file['migration'], values.config);
  return {
    listen: parseHostPort(pick('listen') ?? '127.0.0.1:6482', '--listen'),
    http: http === 'off' ? null : parseHostPort(http ?? '127.0.0.1:8482', '--http'),
    httpTls: values['http-tls'] ?? (file['httpTls'] === true || file['http-tls'] === true),
    state: pick('state') ?? DEFAULT_CONFIG.state,
    certs: pick('certs') ?? DEFAULT_CONFIG.certs,
    machine: pick('machine'),
    hostname: pick('hostname'),
    localTcp: values['local-tcp'] ?? (file['localTcp'] === true || file['local-tcp'] === true),
    migration,
    connections: connectionBounds(file['connections'], values.config),
    guestMemory: guestMemory(values['guest-memory'] ?? file['guestMemory'] ?? file['guest-memory']),
    discovery: discoverySwitch(values.discovery ?? file['discovery']),
    discoveryPort: discoveryPort(values['discovery-port'] ?? file['discoveryPort'] ?? file['discovery-port']),
  };
}
