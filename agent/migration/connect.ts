/**
 * The source's way to the target: log in to the target agent's XML port as any
 * client does (STARTTLS, then SASL PLAIN with the login the request gave, or
 * EXTERNAL with this agent's own certificate for -c), then switch the connection to
 * the `migration` binary channel (README.md here). Every way this can fail becomes
 * one reason line that names the target and the cause: unreachable, a certificate
 * that is not trusted (which one, issued by whom), a refused login, a role that may
 * not migrate.
 *
 * The target's certificate is always verified, against this agent's CA and what its
 * certs/trust/ holds: a migration carries a domain's whole memory.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { certificateSummary, loadTrust, type CertPaths } from '../auth/certs.ts';
import { ErrorCodes, LdmError } from '../errors.ts';
import { migrationRunMessages as rm } from '../messages.ts';
import type { TargetLogin } from '../manager/migrate.ts';
import { parseAgentAddress, type AgentAddress } from '../xmpp/address.ts';
import { ClientError, LdmClient } from '../xmpp/client.ts';

export const MIGRATION_CHANNEL = 'migration';

export type { TargetLogin } from '../manager/migrate.ts';

/** The target as the request gave it (host or host:port): `text` is what messages and the record show. */
export type TargetAddress = AgentAddress;

/** A reason line for the migration's failure, from reaching or logging in to the target. */
export class ConnectError extends LdmError {
  constructor(message: string) {
    super(ErrorCodes.MIGRATION_FAILED, message);
    this.name = 'ConnectError';
  }
}

/** `host`, `host:port` or `[v6]:port` (agent/xmpp/address.ts); undefined when it is neither. */
export const parseTarget = parseAgentAddress;

export interface ChannelOptions {
  target: TargetAddress;
  login: TargetLogin;
  certs: CertPaths;
  /** This agent's certificate CN (its host name): what the target maps an EXTERNAL login to. */
  ownName: string;
  timeoutMs?: number;
}

/** Log in to the target and open the migration channel: the raw TLS socket, paused. */
export async function openMigrationChannel(o: ChannelOptions): Promise<Socket> {
  const { target, login } = o;
  const where = target.text;
  let client: LdmClient;
  try {
    client = await LdmClient.connect({
      host: target.host,
      port: target.port,
      auth: login.kind === 'password' ? { kind: 'password', user: login.user, password: login.password } : { kind: 'certificate' },
      ca: loadTrust(o.certs.dir),
      untrusted: (cert, reason) =>
        new ConnectError(rm.targetNotTrusted(where, String(cert.subject?.CN ?? '?'), String(cert.issuer?.CN ?? '?'), reason)),
      ...(login.kind === 'certificate' ? { cert: readFileSync(o.certs.server, 'utf8'), key: readFileSync(o.certs.serverKey, 'utf8') } : {}),
      timeoutMs: o.timeoutMs ?? 15_000,
    });
  } catch (err) {
    throw translate(err as Error, o);
  }
  try {
    return await client.openChannel(MIGRATION_CHANNEL);
  } catch (err) {
    await client.close().catch(() => {});
    throw err instanceof ClientError && /refused the binary channel/.test(err.message)
      ? new ConnectError(rm.channelRefused(where, channelDetail(err.message)))
      : new ConnectError(rm.unreachable(where, (err as Error).message));
  }
}

/** The agent's own words after "refused the binary channel NAME: ". */
function channelDetail(message: string): string {
  const at = message.indexOf(': ');
  return at < 0 ? message : message.slice(at + 2);
}

function translate(err: Error, o: ChannelOptions): ConnectError {
  if (err instanceof ConnectError) return err;
  const where = o.target.text;
  // A condition is the target's SASL answer (or its not offering the mechanism): the login, not the network.
  if (err instanceof ClientError && err.condition !== undefined) {
    if (o.login.kind === 'password') return new ConnectError(rm.loginRefused(where, o.login.user, err.message));
    return new ConnectError(rm.certificateRefused(where, ownCn(o), err.message));
  }
  return new ConnectError(rm.unreachable(where, err.message));
}

function ownCn(o: ChannelOptions): string {
  try {
    return certificateSummary(readFileSync(o.certs.server)).subjectCN ?? o.ownName;
  } catch {
    return o.ownName;
  }
}
