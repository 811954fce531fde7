/**
 * `ldm migrate-domain` (alias `migrate`) and `ldm cancel-operation`.
 *
 *   ldm migrate-domain [-f] [-n] [-p FILE] SOURCE [USER@]HOST[:PORT][:TARGET-NAME]
 *   ldm migrate-domain [-f] [-n] -c SOURCE HOST[:PORT][:TARGET-NAME]
 *
 * The port: Oracle's syntax has none (ldmd listens on a fixed port). Domain names
 * start with a letter (agent/model/ldm.ts), so a part after HOST made of digits only
 * is a port: `host:6483` (port), `host:6483:ldg2` (port and name), `host:ldg2`
 * (name). IPv6 addresses go in brackets: `[::1]:6483`.
 *
 * The migration runs in the agents; this client sends migrate-domain on its
 * connection and waits for the answer (which comes when the migration has ended).
 * A second connection, opened when needed, polls list-migrations for the live line
 * on a terminal and sends cancel-operation when the command is interrupted: as with
 * Oracle's ldm, killing the command cancels the migration, and the command waits
 * until the source domain is safe before it exits.
 */
import { userInfo } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ldmMessages as m } from '../../messages.ts';
import { item, type Command, type Data, type LdmDocument } from '../../xml/document.ts';
import { LdmClient } from '../../xmpp/client.ts';
import { InputCancelled, isParseArgsError, readHidden, readLine, UsageError } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, readPasswordFile, type LdmContext } from './context.ts';
import { doneText, LiveLine, progressText, RateMeter, snapshotOf } from './progress.ts';

/** How often the live line asks the source agent for the migration's figures. */
const POLL_MS = 200;
/** How long an interrupted command keeps asking for the cancel while the migration has not registered yet or is in its handoff. */
const CANCEL_RETRY_MS = 250;
const CANCEL_GIVE_UP_MS = 30_000;

export interface MigrationTarget {
  user?: string;
  host: string;
  port?: number;
  name?: string;
}

/** `[USER@]HOST[:PORT][:TARGET-NAME]`; undefined when it is not that. */
export function parseMigrationTarget(text: string): MigrationTarget | undefined {
  const at = text.lastIndexOf('@');
  const user = at >= 0 ? text.slice(0, at) : undefined;
  if (user === '') return undefined;
  const rest = at >= 0 ? text.slice(at + 1) : text;
  const hp = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?(?::([^:@\s]+))?$/.exec(rest);
  if (!hp) return undefined;
  const port = hp[2] === undefined ? undefined : Number(hp[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  const target: MigrationTarget = { host: hp[1]! };
  if (user !== undefined) target.user = user;
  if (port !== undefined) target.port = port;
  if (hp[3] !== undefined) target.name = hp[3];
  return target;
}

/** The failure lines of a response, as ldm prints them: the objects' own, or the command's when it failed as a whole. */
export function failureLines(doc: LdmDocument): string[] {
  const lines: string[] = [];
  for (const cmd of doc.commands) {
    // A command that failed as a whole says why itself (its objects only say "not carried out").
    if (cmd.response?.status === 'failure' && cmd.response.messages.length > 0) lines.push(...cmd.response.messages);
    else for (const d of cmd.data) if (d.response?.status === 'failure') lines.push(...d.response.messages);
  }
  if (lines.length === 0 && doc.response?.status === 'failure') lines.push(...doc.response.messages);
  return lines;
}

export const succeeded = (doc: LdmDocument): boolean => doc.response?.status === 'success';

/** A one-command request document. */
export function requestDoc(action: string, data: Data[], options: string[] = []): LdmDocument {
  const cmd: Command = { action, options: options.length > 0 ? [options.join(' ')] : [], arguments: [], data };
  return { root: 'LDM_interface', version: '1.3', commands: [cmd] };
}

/** A <data> naming domains (Contents without items). */
export function domainsData(...names: string[]): Data {
  return { version: '3.0', envelope: { contents: names.map((id) => ({ id, sections: [] })), sections: [] } };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The migrate-domain document of protocol.md section 7: the domain, then its name on the target with the target and the login. */
function migrateDoc(source: string, targetName: string, target: string, login: { user: string; password: string } | undefined, options: string[]): LdmDocument {
  const props: Record<string, string> = { target };
  if (login) {
    props['username'] = b64(login.user);
    props['password'] = b64(login.password);
  }
  const data: Data = {
    version: '3.0',
    envelope: {
      contents: [
        { id: source, sections: [] },
        { id: targetName, sections: [{ type: 'ResourceAllocationSection_Type', items: [item('ldom_info', props)] }] },
      ],
      sections: [],
    },
  };
  return requestDoc('migrate-domain', [data], options);
}

/** The local user's name: Oracle's ldm logs in to the target as the user running it when no USER@ is given. */
function localUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env['LOGNAME'] ?? env['USER'] ?? 'root';
  }
}

/** `Target Password:` without echo on a terminal; the first line of standard input otherwise. */
async function targetPassword(ctx: LdmContext): Promise<string> {
  const stdin = ctx.io.stdin;
  try {
    const password = stdin.isTTY ? await readHidden(stdin, ctx.io.stderr, m.targetPasswordPrompt()) : await readLine(stdin);
    if (password === null || password === '') throw new CommandError(m.noTargetPassword());
    return password;
  } catch (err) {
    if (err instanceof InputCancelled) throw new CommandError(m.targetPasswordCancelled());
    throw err;
  }
}

/** Whether standard error is a terminal: the live line goes there, and only there. */
function stderrIsTty(ctx: LdmContext): { tty: boolean; columns: () => number | undefined } {
  const own = ctx.io.stderr as { isTTY?: boolean; columns?: number };
  // ldm.ts hands in a plain writer over process.stderr; a stream of a test's own says so itself.
  if ('isTTY' in own || 'columns' in own) return { tty: own.isTTY === true, columns: () => own.columns };
  return { tty: process.stderr.isTTY === true, columns: () => process.stderr.columns };
}

async function runMigrate(ctx: LdmContext, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { force: { type: 'boolean', short: 'f' }, 'dry-run': { type: 'boolean', short: 'n' }, certificate: { type: 'boolean', short: 'c' }, 'password-file': { type: 'string', short: 'p' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    if (isParseArgsError(err)) throw new UsageError(err.message);
    throw err;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError(m.migrateArgs());
  const [source, targetText] = positionals as [string, string];
  const target = parseMigrationTarget(targetText);
  if (!target) throw new UsageError(m.migrateBadTarget(targetText));
  const cert = values.certificate === true;
  if (cert && (target.user !== undefined || values['password-file'] !== undefined)) throw new UsageError(m.migrateCertNoLogin());

  const options = [...(values['dry-run'] ? ['-n'] : []), ...(values.force ? ['-f'] : []), ...(cert ? ['-c'] : [])];
  const address = target.port === undefined ? target.host : `${target.host}:${target.port}`;
  let login: { user: string; password: string } | undefined;
  if (!cert) {
    const password = values['password-file'] !== undefined ? readPasswordFile(values['password-file']) : await targetPassword(ctx);
    login = { user: target.user ?? localUser(ctx.env), password };
  }
  const doc = migrateDoc(source, target.name ?? source, address, login, options);
  return new MigrationRun(ctx, source, stderrIsTty(ctx)).run(doc);
}

/** One migrate-domain as the command waits for it: the live line, and the cancel on a signal. */
class MigrationRun {
  private side: Promise<LdmClient> | undefined;
  private settled = false;
  private interrupted: NodeJS.Signals | undefined;
  private cancelling: Promise<void> | undefined;
  private readonly line: LiveLine;
  private readonly rate = new RateMeter();

  constructor(
    private readonly ctx: LdmContext,
    private readonly domain: string,
    private readonly term: { tty: boolean; columns: () => number | undefined },
  ) {
    this.line = new LiveLine(ctx.io.stderr, term.columns);
  }

  /** The second connection (polls and the cancel), opened on first use. */
  private sideClient(): Promise<LdmClient> {
    this.side ??= LdmClient.connect(this.ctx.clientOptions());
    return this.side;
  }

  /** This domain's migrations on the source agent (a failure when it knows none). */
  private async rows(): Promise<Record<string, string>[]> {
    const r = await (await this.sideClient()).request(requestDoc('list-migrations', [domainsData(this.domain)]));
    return r.commands[0]?.data.flatMap((d) => (d.envelope?.contents ?? []).map((c) => Object.fromEntries(c.sections.flatMap((s) => s.items).find((i) => i.type === 'ldom_info')?.props ?? []))) ?? [];
  }

  async run(doc: LdmDocument): Promise<number> {
    const client = await this.ctx.connect();
    // Migrations listed before ours started are not ours: the live line skips them.
    const before = new Set<string>();
    if (this.term.tty) for (const row of await this.rows().catch(() => [])) before.add(row['id'] ?? '');

    const onSignal = (signal: NodeJS.Signals) => this.interrupt(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      let outcome: { doc: LdmDocument } | { err: Error } | undefined;
      const answered = client.request(doc).then(
        (r) => (outcome = { doc: r }),
        (err: Error) => (outcome = { err }),
      );
      void answered.finally(() => (this.settled = true));
      while (!outcome) {
        if (this.term.tty && !this.interrupted) await this.poll(before);
        await Promise.race([answered, delay(POLL_MS)]);
      }
      this.settled = true;
      await this.cancelling;
      if ('err' in outcome) {
        this.line.clear();
        throw new CommandError(m.migrateLost(this.domain, outcome.err.message));
      }
      if (succeeded(outcome.doc)) {
        // On a terminal the live line ends on the migration's own final figures; a dry run leaves no line.
        const final = this.term.tty && !options(doc).includes('-n') ? await this.ours(before).catch(() => undefined) : undefined;
        if (final?.['status'] === 'completed') {
          this.line.show(doneText(this.domain, final));
          this.line.finish();
        } else this.line.clear();
        // Oracle's ldm prints nothing when the migration succeeded.
        return 0;
      }
      this.line.clear();
      for (const l of failureLines(outcome.doc)) this.ctx.err(l);
      return 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (this.side) await (await this.side.catch(() => undefined))?.close().catch(() => {});
    }
  }

  /** Our migration's row: the latest where this agent is the source, not listed before we started. */
  private async ours(before: Set<string>): Promise<Record<string, string> | undefined> {
    return latest(await this.rows(), before);
  }

  private async poll(before: Set<string>): Promise<void> {
    let rows: Record<string, string>[];
    try {
      rows = await this.rows();
    } catch {
      return; // the figures are a convenience: the migration's own answer is what counts
    }
    const row = latest(rows, before);
    if (!row || this.settled || this.interrupted) return;
    const snap = snapshotOf(row);
    this.rate.add(snap.transferred, performance.now());
    this.line.show(progressText(this.domain, snap, this.rate.bytesPerSecond));
  }

  /** SIGINT or SIGTERM: cancel the migration and wait; further signals are ignored meanwhile (the command exits once the domain is safe). */
  private interrupt(signal: NodeJS.Signals): void {
    if (this.interrupted) return;
    this.interrupted = signal;
    this.line.clear();
    this.ctx.err(m.migrateInterrupted(signal, this.domain));
    this.cancelling = this.cancel();
  }

  /**
   * Ask for the cancel until it is accepted or the migration has answered: the
   * agent may not have registered the migration yet ("no migration in progress"),
   * or may be in the handoff, which cannot be cancelled and ends by itself.
   */
  private async cancel(): Promise<void> {
    const deadline = Date.now() + CANCEL_GIVE_UP_MS;
    let refusal: string[] = [];
    while (!this.settled && Date.now() < deadline) {
      try {
        const r = await (await this.sideClient()).request(requestDoc('cancel-operation', [domainsData(this.domain)], ['migration']));
        if (succeeded(r)) return;
        refusal = failureLines(r);
      } catch (err) {
        refusal = [m.migrateCancelFailed(this.domain, (err as Error).message)];
        this.side = undefined;
      }
      await delay(CANCEL_RETRY_MS);
    }
    if (!this.settled) for (const l of refusal) this.ctx.err(l);
  }
}

const latest = (rows: Record<string, string>[], before: Set<string>) => rows.filter((r) => r['role'] === 'source' && !before.has(r['id'] ?? '')).at(-1);

const options = (doc: LdmDocument): string[] => doc.commands[0]?.options.flatMap((o) => o.split(/\s+/)) ?? [];

const CANCEL_WHAT = new Set(['migration', 'reconf', 'memdr']);

async function runCancel(ctx: LdmContext, args: string[]): Promise<number> {
  // -f (migration only): restore a domain in the migration error state on your word when its target cannot be asked.
  const force = args[0] === '-f';
  const [what, domain, ...extra] = force ? args.slice(1) : args;
  if (what === undefined || !CANCEL_WHAT.has(what)) throw new UsageError(m.cancelWhat(what));
  if (domain === undefined || domain.startsWith('-') || extra.length > 0) throw new UsageError(m.cancelDomain(what));
  const r = await ctx.request(requestDoc('cancel-operation', [domainsData(domain)], force ? [what, '-f'] : [what]));
  if (succeeded(r)) return 0;
  for (const l of failureLines(r)) ctx.err(l);
  return 1;
}

export const commands: LdmCommand[] = [
  {
    names: ['migrate-domain', 'migrate'],
    usage: 'migrate-domain [-f] [-n] [-p PASSWORD-FILE] SOURCE-DOMAIN [USER@]HOST[:PORT][:TARGET-NAME]\n       ldm migrate-domain [-f] [-n] -c SOURCE-DOMAIN HOST[:PORT][:TARGET-NAME]',
    run: runMigrate,
  },
  { names: ['cancel-operation'], usage: 'cancel-operation [-f] (migration | reconf | memdr) DOMAIN', run: runCancel },
];
