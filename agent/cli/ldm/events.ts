/**
 * `ldm events [-x] [domain|resource|hardware|progress|all]`: register for the
 * agent's LDM events (protocol.md section 6) and print each as it comes, one line
 * per event, or the event's XML with `-x`. Oracle's ldm has no such subcommand;
 * the line is ours: the action, the domain (`-` for none), then what the event
 * carries:
 *
 *   start-domain ldg1
 *   add-vcpu ldg1 cpu AllocationUnits=8
 *   add-spconfig - spconfig spconfig_name=config-ldg1
 *   migrate-domain ldg1 45% ongoing source=alpha
 *
 * It runs until it is interrupted (SIGINT or SIGTERM: exit 0) or the agent goes
 * away (exit 1).
 */
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { ldmMessages as m } from '../../messages.ts';
import type { Item, LdmDocument } from '../../xml/document.ts';
import { encodeDocument } from '../../xml/encode.ts';
import { UsageError } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, type LdmContext } from './context.ts';
import { domainsData, failureLines, requestDoc, succeeded } from './migrate.ts';

const CLASSES = new Set(['domain', 'resource', 'hardware', 'progress', 'all']);
/**
 * The client tells of a lost connection only through a request that fails: one
 * small listing this often notices an agent that went away.
 */
const HEARTBEAT_MS = 2000;

/** A value as one token: quoted when it has white space or quotes, so a line stays splittable. */
const token = (v: string) => (/[\s"]/.test(v) || v === '' ? JSON.stringify(v) : v);

function itemText(it: Item): string {
  const parts = [it.type];
  for (const [k, v] of it.rasd) parts.push(`${k}=${token(v)}`);
  for (const [k, v] of it.props) parts.push(`${k}=${token(v)}`);
  return parts.join(' ');
}

/** One line per <data> of an event. */
export function eventLines(ev: LdmDocument): string[] {
  const lines: string[] = [];
  for (const cmd of ev.commands) {
    const action = cmd.action ?? '?';
    for (const d of cmd.data) {
      const env = d.envelope;
      const unnamed = (env?.sections ?? []).flatMap((s) => s.items).map(itemText);
      if (!env || env.contents.length === 0) {
        lines.push([action, '-', ...unnamed].join(' '));
        continue;
      }
      for (const c of env.contents) {
        const items = c.sections.flatMap((s) => s.items);
        const info = items.find((i) => i.type === 'ldom_info');
        if (action === 'migrate-domain' && info?.props.has('progress')) {
          // A progress event: its percent and status first, the reporting host after.
          const p = info.props;
          const rest = [...p].filter(([k]) => k !== 'progress' && k !== 'status').map(([k, v]) => `${k}=${token(v)}`);
          lines.push([action, c.id, p.get('progress')!, p.get('status') ?? '', ...rest].filter(Boolean).join(' '));
        } else lines.push([action, c.id, ...items.map(itemText), ...unnamed].join(' '));
      }
    }
    if (cmd.data.length === 0) lines.push(`${action} -`);
  }
  return lines;
}

async function runEvents(ctx: LdmContext, args: string[]): Promise<number> {
  const xml = args[0] === '-x';
  const rest = xml ? args.slice(1) : args;
  if (rest.length > 1 || (rest[0] !== undefined && !CLASSES.has(rest[0]))) throw new UsageError(m.eventsClass(rest.join(' ')));
  const kind = rest[0] ?? 'all';
  const client = await ctx.connect();
  client.onEvent((ev) => {
    if (xml) ctx.io.stdout.write(encodeDocument(ev) + '\n');
    else for (const l of eventLines(ev)) ctx.out(l);
  });
  const r = await client.request(requestDoc(`reg-${kind}-events`, []));
  if (!succeeded(r)) {
    for (const l of failureLines(r)) ctx.err(l);
    return 1;
  }
  // On stderr, so standard output holds nothing but events; it also tells a script that none will be missed from now on.
  ctx.err(m.eventsListening(kind));

  const stop = new AbortController();
  const signalled = Promise.race([once(process, 'SIGINT', { signal: stop.signal }), once(process, 'SIGTERM', { signal: stop.signal })]).then(
    () => 0,
    () => 0,
  );
  const lost = (async () => {
    for (;;) {
      await delay(HEARTBEAT_MS, undefined, { signal: stop.signal });
      try {
        await client.request(requestDoc('list-domain', [domainsData('primary')]));
      } catch (err) {
        return err as Error;
      }
    }
  })().catch(() => undefined);
  const outcome = await Promise.race([signalled, lost]);
  stop.abort();
  if (outcome instanceof Error) throw new CommandError(m.eventsLost(outcome.message));
  return 0;
}

export const commands: LdmCommand[] = [{ names: ['events'], usage: 'events [-x] [domain | resource | hardware | progress | all]', run: runEvents }];
