// Settings: options over --config over defaults, every key of the file checked (the migration
// object included), with a refusal that names the key and what it expects.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_CONFIG, loadConfig } from '../agent/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'ldm-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const withFile = (json: unknown) => {
  const file = join(dir, `c${n++}.json`);
  writeFileSync(file, JSON.stringify(json));
  return ['--config', file];
};

t.test('defaults, then the file, then the options', async (t) => {
  t.same(loadConfig([]).migration, DEFAULT_CONFIG.migration);
  const c = loadConfig([...withFile({ listen: '127.0.0.1:7000', migration: { downtimeLimitMs: 500, maxBandwidth: 1048576, channels: 4, peerTimeoutMs: 5000 } }), '--listen', ':7001']);
  t.same(c.listen, { host: '127.0.0.1', port: 7001 });
  t.same(c.migration, { ...DEFAULT_CONFIG.migration, downtimeLimitMs: 500, maxBandwidth: 1048576, channels: 4, peerTimeoutMs: 5000 });
});

t.test('the migration object is type-checked key by key', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['fast', /"migration" must be a JSON object/],
    [[1], /"migration" must be a JSON object/],
    [{ downtimeLimitMs: '300' }, /migration.downtimeLimitMs" is "300": expected a positive whole number/],
    [{ downtimeLimitMs: -1 }, /migration.downtimeLimitMs" is -1/],
    [{ maxBandwidth: 1e300 }, /migration.maxBandwidth" is 1e\+300/],
    [{ autoConverge: 'yes' }, /migration.autoConverge" is "yes": expected true or false/],
    [{ maxIterations: 0 }, /migration.maxIterations" is 0: expected a whole number from 1 to 1000/],
    [{ channels: 2.5 }, /migration.channels" is 2.5/],
    [{ peerTimeoutMs: 100 }, /migration.peerTimeoutMs" is 100: expected a whole number of milliseconds from 500 to 600000/],
    [{ chanels: 2 }, /unknown key "migration.chanels"/],
    [{ __proto__: null, constructor: 1 }, /unknown key "migration.constructor"/],
  ];
  for (const [migration, message] of cases) {
    t.throws(() => loadConfig(withFile({ migration })), { code: 'LDM_ERR_USAGE', message }, JSON.stringify(migration));
  }
  t.same(loadConfig(withFile({ migration: { maxBandwidth: null, autoConverge: false } })).migration.autoConverge, false);
});
