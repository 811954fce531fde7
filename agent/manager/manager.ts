/**
 * The manager: authorizes each command of a request and dispatches it to its
 * handler, in order (protocol.md section 2: commands in one document run in
 * order). Handlers answer each object (<data>); completeResponse fills in
 * the command and overall levels.
 */
import { roleAllows, type Role } from '../auth/users.ts';
import type { EventClass } from '../events/bus.ts';
import type { Logger } from '../log.ts';
import { authMessages, managerMessages, objectMessages } from '../messages.ts';
import { ModelError, type Ldm } from '../model/ldm.ts';
import { approximateSize, failure, optionTokens, success, type Command, type LdmDocument } from '../xml/document.ts';
import { completeResponse, overallFailure } from '../xml/respond.ts';
import { REGISTRATIONS } from './actions.ts';
import { objectHandlers, type ObjectHandler } from './handlers.ts';
import { LISTING_ACTIONS, runListing } from './listing.ts';
import { cancelMigration, listMigrations, migrateDomain, type MigrationDesk } from './migrate.ts';
import { ObjectError } from './objects.ts';

export interface Principal {
  name: string;
  role: Role;
  /** How the peer proved who it is. */
  via: 'local' | 'password' | 'certificate';
}

/** What the manager knows of the connection a request came on. */
export interface Session {
  principal: Principal;
  /** The event classes this connection registered for; its bus subscription reads this same set. */
  events: Set<EventClass>;
}

/** Bounds on the work one request document may ask for (README: limits). */
export interface ManagerLimits {
  /** <cmd> elements per document. */
  maxCommands: number;
  /** <data> objects per document, all commands together. */
  maxObjects: number;
  /** Listing output per response, estimated before it is encoded. */
  maxResponseBytes: number;
}

export const DEFAULT_MANAGER_LIMITS: ManagerLimits = { maxCommands: 256, maxObjects: 1024, maxResponseBytes: 16 * 1024 * 1024 };

export interface ManagerDeps {
  ldm: Ldm;
  log: Logger;
  /** Where migrate-domain, cancel-operation migration and list-migrations go (the daemon's migration service). */
  migrations?: MigrationDesk;
  /** Told of every command once answered: its action, its status, how long it took (the web app's metrics). */
  observe?: (action: string, status: 'success' | 'failure', seconds: number) => void;
  limits?: Partial<ManagerLimits>;
}

type Handler = (cmd: Command, session: Session) => void | Promise<void>;

/**
 * Let other connections' work run between two commands or two listed
 * objects, so one long document never holds the event loop for long.
 */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Known actions the simulated platforms do not have: the Netra data plane
 * channels (protocol.md section 4), and later releases' virtual SAN and HBA,
 * VM API, resource group, dependency and network-statistics actions
 * (the 3.4 and 3.5 guides' names), which the agent does not model.
 */
const UNSUPPORTED = [
  'add-vdpcc', 'remove-vdpcc', 'add-vdpcs', 'remove-vdpcs',
  'add-vhba', 'set-vhba', 'remove-vhba', 'rescan-vhba', 'list-hba',
  'add-vsan', 'remove-vsan',
  'list-vmapi', 'set-vmapi', 'remove-vmapi',
  'list-rsrc-group', 'list-dependencies', 'list-netdev', 'list-netstat',
];

export class Manager {
  private readonly handlers = new Map<string, Handler>();
  private readonly log: Logger;
  private readonly limits: ManagerLimits;
  private readonly ldm: Ldm;
  private readonly observe: ManagerDeps['observe'];

  constructor(deps: ManagerDeps) {
    this.observe = deps.observe;
    this.log = deps.log.child('manager');
    this.ldm = deps.ldm;
    this.limits = { ...DEFAULT_MANAGER_LIMITS, ...deps.limits };
    for (const [action, reg] of Object.entries(REGISTRATIONS)) {
      // The objects need no answer of their own: completeResponse answers them with success.
      this.handlers.set(action, (_cmd, session) => {
        for (const c of reg!.classes) reg!.register ? session.events.add(c) : session.events.delete(c);
      });
    }
    for (const [action, handler] of Object.entries(objectHandlers(deps.ldm))) this.handlers.set(action, this.perObject(action, handler));
    // remove-domain -a names no domain: it removes every one but the primary.
    const removeOne = this.handlers.get('remove-domain')!;
    this.handlers.set('remove-domain', async (cmd, session) => {
      if (!optionTokens(cmd).includes('-a')) return removeOne(cmd, session);
      await this.answer(cmd.data[0] ?? (cmd.data[0] = { version: '3.0' }), () => deps.ldm.removeDomain([], true).then(() => undefined));
    });
    const desk = deps.migrations;
    if (desk) {
      this.handlers.set('migrate-domain', (cmd) => migrateDomain(desk, cmd));
      const cancelOther = this.handlers.get('cancel-operation')!;
      this.handlers.set('cancel-operation', (cmd, session) => (optionTokens(cmd).includes('migration') ? cancelMigration(desk, cmd) : cancelOther(cmd, session)));
      this.handlers.set('list-migrations', (cmd) => listMigrations(desk, cmd, deps.ldm.machine.hostname));
    }
    for (const action of UNSUPPORTED) {
      this.handlers.set(action, (cmd) => {
        cmd.response = failure(objectMessages.notSupported(action, deps.ldm.machine.platform));
      });
    }
  }

  /** A handler that answers each object of the command separately. */
  private perObject(action: string, handler: ObjectHandler): Handler {
    return async (cmd) => {
      if (cmd.data.length === 0) {
        cmd.response = failure(objectMessages.noData(action));
        return;
      }
      for (const data of cmd.data) {
        if (data.problem) continue;
        await this.answer(data, () => handler(data, cmd));
      }
    };
  }

  private async answer(data: Command['data'][number], run: () => Promise<string | void | undefined>): Promise<void> {
    try {
      const warning = await run();
      data.response = success();
      if (warning) data.warning = { status: 'success', messages: [warning] };
    } catch (err) {
      if (err instanceof ModelError || err instanceof ObjectError) data.response = failure(err.message);
      else {
        this.log.error('action failed', { error: (err as Error).stack ?? String(err) });
        data.response = failure(objectMessages.internal());
      }
    }
  }

  /**
   * Run every command of a decoded request, in order; returns the request
   * turned into its response. A document over the limits is refused whole,
   * before anything in it is carried out.
   */
  async execute(doc: LdmDocument, session: Session): Promise<LdmDocument> {
    const { maxCommands, maxObjects } = this.limits;
    if (doc.commands.length > maxCommands) return overallFailure(managerMessages.tooManyCommands(doc.commands.length, maxCommands), doc.version);
    const objects = doc.commands.reduce((n, c) => n + c.data.length, 0);
    if (objects > maxObjects) return overallFailure(managerMessages.tooManyObjects(objects, maxObjects), doc.version);
    const budget = { left: this.limits.maxResponseBytes };
    const took = new Map<Command, number>();
    for (const [index, cmd] of doc.commands.entries()) {
      if (index > 0) await yieldToLoop();
      if (cmd.problem || cmd.action === null) continue;
      const started = performance.now();
      try {
        await this.command(cmd, session, budget);
      } finally {
        took.set(cmd, (performance.now() - started) / 1000);
      }
    }
    const response = completeResponse(doc);
    if (this.observe) for (const [cmd, seconds] of took) this.observe(cmd.action!, cmd.response?.status ?? 'failure', seconds);
    return response;
  }

  /** One command: the role check, then its listing or handler. */
  private async command(cmd: Command, session: Session, budget: { left: number }): Promise<void> {
    const action = cmd.action!;
    const { principal } = session;
    if (!roleAllows(principal.role, action)) {
      cmd.problem = authMessages.actionRefused(principal.name, principal.role, action);
      return;
    }
    if (LISTING_ACTIONS.includes(action)) return this.list(cmd, budget);
    const handler = this.handlers.get(action);
    if (!handler) {
      cmd.response = failure(managerMessages.notImplemented(action));
      return;
    }
    await handler(cmd, session);
  }

  /**
   * A listing: each object answered on its own. Listings are what makes a
   * response large (a request is echoed, at most its own size), so they draw
   * on the response's byte budget; once it is spent the objects that remain
   * fail instead of being listed.
   */
  private async list(cmd: Command, budget: { left: number }): Promise<void> {
    if (cmd.data.length === 0) cmd.data.push({ version: '3.0' });
    for (const [index, data] of cmd.data.entries()) {
      if (index > 0) await yieldToLoop();
      if (data.problem) continue;
      if (budget.left <= 0) {
        data.response = failure(managerMessages.responseTooLarge(this.limits.maxResponseBytes));
        continue;
      }
      runListing(this.ldm, cmd.action!, data);
      budget.left -= data.envelope ? approximateSize(data.envelope) : 0;
      if (budget.left < 0) {
        delete data.envelope;
        data.response = failure(managerMessages.responseTooLarge(this.limits.maxResponseBytes));
      }
    }
  }
}
