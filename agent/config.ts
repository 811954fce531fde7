/**
 * The daemon's settings (contract.md): command-line options over `--config
 * FILE` (JSON with the same keys) over the defaults.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ErrorCodes, LdmError } from './errors.ts';
import { configMessages } from './messages.ts';

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
}

export interface AgentConfig {
  listen: HostPort;
  http: HostPort | null;
  state: string;
  certs: string;
  machine: string | undefined;
  hostname: string | undefined;
  localTcp: boolean;
  migration: MigrationTuning;
}

export const DEFAULT_CONFIG: AgentConfig = {
  listen: { host: '127.0.0.1', port: 6482 },
  http: { host: '127.0.0.1', port: 8482 },
  state: './var',
  certs: './certs',
  machine: undefined,
  hostname: undefined,
  localTcp: false,
  migration: { downtimeLimitMs: 300, maxBandwidth: null, autoConverge: true, maxIterations: 30, channels: 1 },
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

const KNOWN_KEYS = new Set(['listen', 'http', 'state', 'certs', 'machine', 'hostname', 'localTcp', 'local-tcp', 'migration']);

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
        state: { type: 'string' },
        certs: { type: 'string' },
        machine: { type: 'string' },
        hostname: { type: 'string' },
        config: { type: 'string' },
        'local-tcp': { type: 'boolean' },
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
  const migration = { ...DEFAULT_CONFIG.migration, ...((file['migration'] as Partial<MigrationTuning> | undefined) ?? {}) };
  return {
    listen: parseHostPort(pick('listen') ?? '127.0.0.1:6482', '--listen'),
    http: http === 'off' ? null : parseHostPort(http ?? '127.0.0.1:8482', '--http'),
    state: pick('state') ?? DEFAULT_CONFIG.state,
    certs: pick('certs') ?? DEFAULT_CONFIG.certs,
    machine: pick('machine'),
    hostname: pick('hostname'),
    localTcp: values['local-tcp'] ?? (file['localTcp'] === true || file['local-tcp'] === true),
    migration,
  };
}
