// A guest's boot time: set when it starts, carried in its runtime state, kept by the
// guest that resumes it elsewhere (incoming migration), so list-domain's `uptime`
// goes on across a migration; a runtime that claims a boot in the future is not believed.
import t from 'tap';
import { SimHypervisor } from '../agent/hypervisor/simulator.ts';
import { Guests } from '../agent/manager/guests.ts';

const M = 2 ** 20;

t.test('start sets the boot time; an incoming guest keeps the one of its runtime', async (t) => {
  const hv = new SimHypervisor({ memoryBudget: 64 * M });
  t.teardown(() => hv.close());
  const source = hv.create({ name: 'src', memoryBytes: 8 * M, workload: { workingSet: 0 } });
  t.equal(source.startedAt, null, 'no boot time before start');
  const before = Date.now();
  source.start({ autoBoot: true, os: 's11' });
  t.ok(source.startedAt! >= before && source.startedAt! <= Date.now(), 'start records the boot');
  source.suspend();
  const runtime = { ...source.runtime(), startedAt: source.startedAt! - 5_000 };
  t.equal(source.runtime().startedAt, source.startedAt, 'the runtime carries it');
  const target = hv.create({ name: 'dst', memoryBytes: 8 * M, workload: { workingSet: 0 } });
  target.resume(runtime);
  t.equal(target.startedAt, runtime.startedAt, 'the resumed guest booted when its runtime says');
  const guests = new Guests(undefined, hv);
  t.equal(guests.uptime('dst'), 5, 'uptime in whole seconds since that boot');
  t.equal(guests.uptime('nosuch'), undefined, 'no guest, no uptime');

  const liar = hv.create({ name: 'future', memoryBytes: 8 * M, workload: { workingSet: 0 } });
  liar.resume({ ...runtime, startedAt: Date.now() + 3_600_000 });
  t.ok(liar.startedAt! <= Date.now(), 'a boot in the future is taken as now');
});
