// test/helpers/programs.ts: a test that needs another program fails naming the package, never a bare ENOENT.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram } from './helpers/programs.ts';

t.test('a missing openssl fails with the Debian package to install', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'ldm-nopath-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  t.throws(() => runProgram('openssl', ['version'], { env: { PATH: empty } }), {
    message: /openssl.*not installed.*Debian package openssl/,
  });
  try {
    runProgram('openssl', ['version'], { env: { PATH: empty } });
  } catch (err) {
    t.notMatch((err as Error).message, /ENOENT/, 'no bare ENOENT');
  }
});

t.test('a present openssl runs as spawnSync would', async (t) => {
  const r = runProgram('openssl', ['version']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /SSL/, 'its own output, as text');
});
