/**
 * The manager's side of migration: reading migrate-domain (protocol.md section 7),
 * cancel-operation `migration`, and list-migrations, and handing them to the
 * migration service through the MigrationDesk interface (the daemon injects
 * agent/migration/service.ts; the manager depends on nothing of it).
 *
 * migrate-domain answers when the migration has ended: success, or a failure with
 * one reason line and the summary line. Closing the requesting connection meanwhile
 * does not cancel it: the migration belongs to the managers.
 */
import { migrationRunMessages as rm, objectMessages } from '../messages.ts';
import { failure, item, optionTokens, success, type Command, type Content, type Data } from '../xml/document.ts';
import { contents, domainOf, ObjectError } from './objects.ts';

export type TargetLogin = { kind: 'password'; user: string; password: string } | { kind: 'certificate' };

export interface MigrationOrder {
  domain: string;
  targetName: string;
  /** host or host:port, as given. */
  target: string;
  login: TargetLogin;
  dryRun: boolean;
  force: boolean;
}

/** A migration as list-migrations shows it. */
export interface MigrationEntry {
  /** This machine's name for the domain. */
  domain: string;
  properties(hostname: string): Record<string, string>;
}

export interface MigrationDesk {
  migrate(order: MigrationOrder): Promise<{ ok: true } | { ok: false; lines: readonly string[] }>;
  /** `force` (-f): a source in the error state whose target cannot be asked is restored on the operator's word. */
  cancel(name: string, force?: boolean): Promise<{ ok: true } | { ok: false; message: string }>;
  list(): readonly MigrationEntry[];
}

const OPTIONS = new Set(['-n', '-f', '-c']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64(value: string, key: string): string {
  const t = value.trim();
  if (t.length % 4 !== 0 || !BASE64.test(t)) throw new ObjectError(rm.badBase64(key));
  return Buffer.from(t, 'base64').toString('utf8');
}

/** The order a migrate-domain object gives (protocol.md section 7); ObjectError when it is malformed. */
export function readOrder(data: Data, cmd: Command): MigrationOrder {
  const tokens = optionTokens(cmd);
  const unknown = tokens.filter((t) => !OPTIONS.has(t));
  if (unknown.length > 0) throw new ObjectError(rm.badOptions(unknown));
  const [source, target] = contents(data) as [Content | undefined, Content | undefined];
  if (!source || !target || contents(data).length !== 2) throw new ObjectError(rm.twoContents());
  const info = target.sections.flatMap((s) => s.items).find((i) => i.type.toLowerCase() === 'ldom_info');
  const get = (key: string) => info?.props.get(key)?.trim() || undefined;
  const host = get('target');
  if (!host) throw new ObjectError(rm.noTarget());
  const user = get('username');
  const password = info?.props.get('password');
  const certificate = tokens.includes('-c');
  let login: TargetLogin;
  if (certificate) {
    if (user !== undefined || password !== undefined) throw new ObjectError(rm.userWithCertificate());
    login = { kind: 'certificate' };
  } else {
    if (user === undefined || password === undefined) throw new ObjectError(rm.noCredentials());
    login = { kind: 'password', user: base64(user, 'username'), password: base64(password, 'password') };
  }
  return { domain: domainOf(data), targetName: target.id || source.id, target: host, login, dryRun: tokens.includes('-n'), force: tokens.includes('-f') };
}

/** migrate-domain: one object, answered when the migration has ended. */
export async function migrateDomain(desk: MigrationDesk, cmd: Command): Promise<void> {
  const data = cmd.data[0];
  if (!data) {
    cmd.response = failure(objectMessages.noData('migrate-domain'));
    return;
  }
  for (const extra of cmd.data.slice(1)) extra.response = failure(rm.oneDomainPerCommand());
  if (data.problem) return;
  let order: MigrationOrder;
  try {
    order = readOrder(data, cmd);
  } catch (err) {
    if (!(err instanceof ObjectError)) throw err;
    data.response = failure(err.message);
    return;
  }
  const outcome = await desk.migrate(order);
  data.response = outcome.ok ? success() : failure(...outcome.lines);
}

/** cancel-operation migration, for each object. */
export async function cancelMigration(desk: MigrationDesk, cmd: Command): Promise<void> {
  if (cmd.data.length === 0) {
    cmd.response = failure(objectMessages.noData('cancel-operation'));
    return;
  }
  for (const data of cmd.data) {
    if (data.problem) continue;
    let name: string;
    try {
      name = domainOf(data);
    } catch (err) {
      data.response = failure((err as Error).message);
      continue;
    }
    const outcome = await desk.cancel(name, optionTokens(cmd).includes('-f'));
    data.response = outcome.ok ? success() : failure(outcome.message);
  }
}

/**
 * list-migrations: one object per migration this agent took part in, running and
 * recently finished, oldest first; objects naming domains ask for theirs only (a
 * domain no migration names fails).
 */
export function listMigrations(desk: MigrationDesk, cmd: Command, hostname: string): void {
  const entry = (m: MigrationEntry): Data => ({
    version: '3.0',
    envelope: {
      contents: [{ id: m.domain, sections: [{ type: 'ResourceAllocationSection_Type', items: [item('ldom_info', m.properties(hostname))] }] }],
      sections: [],
    },
    response: success(),
  });
  const all = desk.list();
  const asked = cmd.data.filter((d) => !d.problem && (d.envelope?.contents.length ?? 0) > 0);
  if (cmd.data.some((d) => d.problem)) return; // answered by completeResponse with the decoder's words
  if (asked.length === 0) {
    cmd.data = all.map(entry);
    if (cmd.data.length === 0) cmd.response = success();
    return;
  }
  cmd.data = asked.flatMap((d) => {
    const names = new Set(d.envelope!.contents.map((c) => c.id));
    const found = all.filter((m) => names.has(m.domain));
    if (found.length > 0) return found.map(entry);
    return [{ ...d, response: failure(...[...names].map((n) => rm.noMigrationKnown(n))) }];
  });
}
