/**
 * What the migration cancel, fault and concurrency tests share on top of
 * cluster.ts: cancel-operation requests, finding one migration's row by its id
 * (list-migrations keeps finished ones, and a refused second request adds a row
 * of its own), waiting for a phase, and the checks "the guest runs here, with no
 * migration flag" and "the other agent has no such domain".
 */
import type { Test } from 'tap';
import { data, request } from './requests.ts';
import { migrate, waitFor, type AgentProc, type MigrateResult, type MigrationRow } from './cluster.ts';

/** cancel-operation migration DOMAIN; `force`: -f (restore on the operator's word). */
export const cancelXml = (domain: string, force = false) => request('cancel-operation', data(domain), force ? 'migration -f' : 'migration');

/** The row of migration `id` on `agent`. */
export async function rowById(agent: AgentProc, id: string): Promise<MigrationRow | undefined> {
  return (await agent.migrations()).find((m) => m['id'] === id);
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** Wait until `agent` lists a running (not finished) migration of `domain` in `phase`; its row. */
export async function waitPhase(agent: AgentProc, domain: string, phase: string, ms = 20_000): Promise<MigrationRow> {
  return waitFor(
    async () => (await agent.migrations()).find((m) => m.domain === domain && m['phase'] === phase && !FINISHED.has(m['status']!)),
    ms,
    `${agent.name}: a migration of ${domain} in phase ${phase}`,
  );
}

/**
 * Wait until `agent` has logged `count` test holds since it started (source.ts and
 * target.ts log each): the list-migrations phase alone is set before the work of
 * that phase is done (`checks` is shown while the source is still connecting).
 */
export async function waitHeld(agent: AgentProc, point: string, count = 1, ms = 20_000): Promise<void> {
  const seen = () => (agent.stdout() + agent.stderr()).split(`migration held (test) point=${point} `).length - 1;
  await waitFor(() => seen() >= count, ms, `${agent.name}: hold ${count} at ${point}`);
}

/** Column 6 of list-domain's flags (s source, t target, e error, - none). */
export const column6 = (flags: string | undefined) => flags?.[5];

/** The domain is active on `agent`, with no migration flag, and its guest works (not stopped). */
export async function runsHere(t: Test, agent: AgentProc, domain: string, what: string): Promise<void> {
  const info = await agent.listDomain(domain);
  t.equal(info?.['state'], 'active', `${what}: ${domain} is active on ${agent.name}`);
  t.equal(column6(info?.['flags']), '-', `${what}: no migration flag on ${agent.name} (flags ${info?.['flags']})`);
  t.match(info?.['sim-workload'], /^(filling|rewriting|idle)$/, `${what}: its guest runs (sim-workload ${info?.['sim-workload']})`);
}

/** `agent` has no domain `domain` (none received, or none left behind). */
export async function absent(t: Test, agent: AgentProc, domain: string, what: string): Promise<void> {
  t.equal(await agent.listDomain(domain), undefined, `${what}: ${agent.name} has no ${domain}`);
}

/** A migration that must succeed; fails the test with its messages otherwise. */
export async function migrateOk(t: Test, source: AgentProc, target: AgentProc, domain: string, what: string): Promise<MigrateResult> {
  const r = await migrate(source, target, domain);
  t.ok(r.ok, `${what}: ${r.ok ? 'migrated' : r.all.join(' | ')}`);
  return r;
}

/** Where `text` first appears in the agent's output (stdout and stderr), or undefined. */
export const logged = (agent: AgentProc, text: string) => (agent.stdout() + agent.stderr()).includes(text);
