// Cold migration between two real agents (child processes): a bound domain arrives
// bound, an inactive one inactive, each with its constraints and variables; a rename
// gives the domain its new name on the target; list-migrations shows the migration
// completed on both agents.
import t, { type Test } from 'tap';
import type { Content } from '../agent/xml/document.ts';
import { itemsOf, migrate, startPair, type AgentProc, type Props } from './helpers/cluster.ts';

const { a, b } = await startPair(t);
await Promise.all([a.services(), b.services()]);

const vars = { 'boot-device': 'vdisk0', 'sim-os': 's11', 'sim-working-set': '16M', 'auto-boot?': 'true' };
await a.domain('ldg-bound', 'bound', { vcpus: 4, memory: '2G', mau: 1, vars });
await a.domain('ldg-idle', 'inactive', { vcpus: 2, memory: '1G', vars: { 'boot-device': 'disk net' } });
await a.domain('ldg-old', 'bound', { vcpus: 1, memory: '1G', disks: [], vnets: [], vars: { 'sim-os': 's10u8' } });

/** Every item of list-constraints as comparable text: type, rasd values, properties (the domain's name aside). */
function constraintText(c: Content): string[] {
  return c.sections
    .flatMap((s) => s.items)
    .map((i) => {
      const props = [...i.props].filter(([k]) => k !== 'name').sort(([x], [y]) => x.localeCompare(y));
      return JSON.stringify([i.type, [...i.rasd].sort(([x], [y]) => x.localeCompare(y)), props, i.uuid ?? null]);
    })
    .sort();
}

/** What the source had, to compare with what arrives. */
async function before(name: string): Promise<{ info: Props; constraints: string[]; vars: Props }> {
  return { info: (await a.listDomain(name))!, constraints: constraintText(await a.constraints(name)), vars: await a.variables(name) };
}

/** The domain arrived on `target` as `as`, in `state`, with the source's constraints and variables, and left `source`. */
async function arrived(t: Test, source: AgentProc, target: AgentProc, name: string, as: string, was: Awaited<ReturnType<typeof before>>, state: string) {
  t.equal(await source.listDomain(name), undefined, `${name} no longer exists on the source`);
  const info = await target.listDomain(as);
  t.match(info, { state, flags: '------' }, `${as} is ${state} on the target, with no migration flag`);
  if (!info) return;
  t.equal(info?.['uuid'], was.info['uuid'], 'the same UUID');
  t.equal(info?.['hostid'], was.info['hostid'], 'the same host ID');
  t.same(constraintText(await target.constraints(as)), was.constraints, 'the same constraints');
  t.same(await target.variables(as), was.vars, 'the same variables');
  const src = await source.migration(name);
  const dst = await target.migration(as);
  t.match(src, { role: 'source', status: 'completed', phase: 'done' }, 'list-migrations on the source: completed');
  t.match(dst, { role: 'target', status: 'completed', phase: 'done' }, 'list-migrations on the target: completed');
}

t.test('a bound domain arrives bound, with its constraints and variables', async (t) => {
  const was = await before('ldg-bound');
  const r = await migrate(a, b, 'ldg-bound');
  t.same({ ok: r.ok, lines: r.lines }, { ok: true, lines: [] }, `migrated: ${r.all.join(' | ')}`);
  await arrived(t, a, b, 'ldg-bound', 'ldg-bound', was, 'bound');
  t.ok((await b.migration('ldg-bound'))?.['peer'], 'the target names its peer');
});

t.test('an inactive domain arrives inactive', async (t) => {
  const was = await before('ldg-idle');
  const r = await migrate(a, b, 'ldg-idle');
  t.ok(r.ok, `migrated: ${r.all.join(' | ')}`);
  await arrived(t, a, b, 'ldg-idle', 'ldg-idle', was, 'inactive');
});

t.test('rename: a bound domain (its OS too old to migrate live) arrives under its new name', async (t) => {
  const was = await before('ldg-old');
  const r = await migrate(a, b, 'ldg-old', { as: 'ldg-new' });
  t.ok(r.ok, `migrated: ${r.all.join(' | ')}`);
  t.equal(await b.listDomain('ldg-old'), undefined, 'the target has no domain of the old name');
  await arrived(t, a, b, 'ldg-old', 'ldg-new', was, 'bound');
});

t.test('and back again: the migrated domain migrates from the target to the source', async (t) => {
  const was = { info: (await b.listDomain('ldg-bound'))!, constraints: constraintText(await b.constraints('ldg-bound')), vars: await b.variables('ldg-bound') };
  const r = await migrate(b, a, 'ldg-bound');
  t.ok(r.ok, `migrated back: ${r.all.join(' | ')}`);
  await arrived(t, b, a, 'ldg-bound', 'ldg-bound', was, 'bound');
  t.same(
    (await a.domainNames()).sort(),
    ['ldg-bound', 'primary'],
    'the source holds only what came back',
  );
  t.same((await b.domainNames()).sort(), ['ldg-idle', 'ldg-new', 'primary']);
});
