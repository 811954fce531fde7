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
import { failure, optionTokens, success, type Command, type LdmDocument } from '../xml/document.ts';
import { completeResponse } from '../xml/respond.ts';
import { REGISTRATIONS } from './actions.ts';
import { objectHandlers, type ObjectHandler } from './handlers.ts';
import { LISTING_ACTIONS, runListing } from './listing.ts';
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

export interface ManagerDeps {
  ldm: Ldm;
  log: Logger;
}

type Handler = (cmd: Command, session: Session) => void | Promise<void>;

/** Actions of protocol.md section 4 this platform does not have (Netra data plane channels). */
const UNSUPPORTED = ['add-vdpcc', 'remove-vdpcc', 'add-vdpcs', 'remove-vdpcs'];

export class Manager {
  private readonly handlers = new Map<string, Handler>();
  private readonly log: Logger;

  constructor(deps: ManagerDeps) {
    this.log = deps.log.child('manager');
    for (const [action, reg] of Object.entries(REGISTRATIONS)) {
      // The objects need no answer of their own: completeResponse answers them with success.
      this.handlers.set(action, (_cmd, session) => {
        for (const c of reg!.classes) reg!.register ? session.events.add(c) : session.events.delete(c);
      });
    }
    for (const action of LISTING_ACTIONS) this.handlers.set(action, (cmd) => runListing(deps.ldm, cmd));
    for (const [action, handler] of Object.entries(objectHandlers(deps.ldm))) this.handlers.set(action, this.perObject(action, handler));
    // remove-domain -a names no domain: it removes every one but the primary.
    const removeOne = this.handlers.get('remove-domain')!;
    this.handlers.set('remove-domain', async (cmd, session) => {
      if (!optionTokens(cmd).includes('-a')) return removeOne(cmd, session);
      await this.answer(cmd.data[0] ?? (cmd.data[0] = { version: '3.0' }), () => deps.ldm.removeDomain([], true).then(() => undefined));
    });
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

  /** Run every command of a decoded request; returns the request turned into its response. */
  async execute(doc: LdmDocument, session: Session): Promise<LdmDocument> {
    for (const cmd of doc.commands) {
      if (cmd.problem || cmd.action === null) continue;
      const { principal } = session;
      if (!roleAllows(principal.role, cmd.action)) {
        cmd.problem = authMessages.actionRefused(principal.name, principal.role, cmd.action);
        continue;
      }
      const handler = this.handlers.get(cmd.action);
      if (!handler) {
        cmd.response = failure(managerMessages.notImplemented(cmd.action));
        continue;
      }
      await handler(cmd, session);
    }
    return completeResponse(doc);
  }
}

