/**
 * What a subcommand works with: the streams, the global options, and a client
 * connected on first use to the agent they name (the local socket by default).
 *
 * Connection (contract.md, `ldm`): without `-H`, the Unix socket
 * `$LDM_AGENT_STATE/ldmd.sock` (default `./var/ldmd.sock`), no login. With
 * `-H host[:port]`: TLS, then `-u USER` with the password from `--password-file F`
 * (first line; a file group or others can read is refused), or `--cert F --key F`
 * (SASL EXTERNAL); `--ca F` verifies the agent's certificate and is required: an
 * agent that cannot be verified is not sent a password (no trust on first use).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ldmMessages as m } from '../../messages.ts';
import type { LdmDocument } from '../../xml/document.ts';
import { DEFAULT_XML_PORT } from '../../xmpp/address.ts';
import { LdmClient, type ClientOptions } from '../../xmpp/client.ts';
import { UsageError, type CliIo } from '../io.ts';

export interface GlobalOptions {
  host?: string;
  port?: number;
  user?: string;
  passwordFile?: string;
  cert?: string;
  key?: string;
  ca?: string;
}

/** A command failed in a way the user can act on: one line on stderr, exit status 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** The local socket the agent listens on (daemon.ts: STATE/ldmd.sock). */
export function localSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['LDM_AGENT_STATE'] ?? './var', 'ldmd.sock');
}

/**
 * The first line of a password file; refused when group or others may read it
 * (migration.md: `-p` files must be 0400 or 0600), or when it is missing or empty.
 */
export function readPasswordFile(file: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CommandError(m.passwordFileUnreadable(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
  }
  if ((mode & 0o077) !== 0) throw new CommandError(m.passwordFileOpen(file, (mode & 0o777).toString(8)));
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new CommandError(m.passwordFileEmpty(file));
  return line;
}

export class LdmContext {
  private client: LdmClient | undefined;

  constructor(
    readonly io: CliIo,
    readonly globals: GlobalOptions,
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  out(line: string): void {
    this.io.stdout.write(line + '\n');
  }

  err(line: string): void {
    this.io.stderr.write(line + '\n');
  }

  /** The client options the global options describe. */
  clientOptions(): ClientOptions {
    const g = this.globals;
    if (g.host === undefined) {
      if (g.user !== undefined || g.cert !== undefined) throw new UsageError(m.loginNeedsHost());
      return { path: localSocketPath(this.env), auth: { kind: 'local' } };
    }
    const read = (file: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        throw new CommandError(m.cannotRead(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
      }
    };
    // Our choice (README): no trust on first use. A remote agent is verified against --ca or not used.
    if (g.ca === undefined) throw new UsageError(m.remoteNeedsCa());
    const base: ClientOptions = { host: g.host, port: g.port ?? DEFAULT_XML_PORT, auth: { kind: 'local' }, ca: read(g.ca) };
    if (g.cert !== undefined || g.key !== undefined) {
      if (g.cert === undefined || g.key === undefined) throw new UsageError(m.certNeedsKey());
      return { ...base, auth: { kind: 'certificate' }, cert: read(g.cert), key: read(g.key) };
    }
    if (g.user === undefined) throw new UsageError(m.remoteNeedsLogin());
    if (g.passwordFile === undefined) throw new UsageError(m.remoteNeedsPassword());
    return { ...base, auth: { kind: 'password', user: g.user, password: readPasswordFile(g.passwordFile) } };
  }

  /** The connected client (connected on first use). */
  async connect(): Promise<LdmClient> {
    if (this.client) return this.client;
    const options = this.clientOptions();
    try {
      this.client = await LdmClient.connect(options);
    } catch (err) {
      const where = options.path ?? `${options.host}:${options.port}`;
      throw new CommandError(m.cannotConnect(where, (err as Error).message));
    }
    return this.client;
  }

  /** Send one document and return its response. */
  async request(doc: LdmDocument | string): Promise<LdmDocument> {
    const client = await this.connect();
    return client.request(doc);
  }

  async close(): Promise<void> {
    await this.client?.close().catch(() => {});
    this.client = undefined;
  }
}
