// `ldm migrate-domain` and `ldm cancel-operation`, the real executable against two
// real agents (child processes, cluster.ts), on the source agent's local socket.
// Both agents copy at most 8 MB/s, so a 16M guest takes about 2 s and a 48M one
// about 6 s: long enough to watch the live line and to interrupt, short enough for
// the file to stay fast. Expected texts come from ldm-cli-outputs.md section 7
// (Oracle prints nothing on success; a failure is the reason line, then
// `Domain Migration of LDom NAME failed` or `... would fail if attempted`), with
// the agent's own reason lines from agent/messages.ts.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ldmMessages as lm, migrationMessages as mmsg, migrationRunMessages as rm, objectMessages } from '../agent/messages.ts';
import { ADMIN, startPair, waitFor } from './helpers/cluster.ts';
import { column6 } from './helpers/faults.ts';
import { LDM_ARGS, ldm, startLdm, startProgram, waitOutput } from './helpers/ldm.ts';

const SLOW = { config: { migration: { maxBandwidth: 8e6 } } };
const { a, b } = await startPair(t, { a: SLOW, b: SLOW });
await Promise.all([a.services(), b.services()]);
await a.domain('ldg1', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '16M', 'sim-dirty-rate': '1M' } });
await a.domain('big', 'active', { vcpus: 8, memory: '1G', vars: { 'sim-working-set': '48M', 'sim-dirty-rate': '1M' } });
await b.domain('taken', 'inactive', { vcpus: 8, memory: '1G' });

const dir = mkdtempSync(join(tmpdir(), 'ldm-cli-migrate-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const passwordFile = (mode: number, text = `${ADMIN.password}\n`) => {
  const f = join(dir, `pw-${mode.toString(8)}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
};
const onA = { state: a.state };
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

t.test('bad usage: exit 2 with the reason and the usage', async (t) => {
  const bad = await ldm(['migrate-domain', 'ldg1', 'host:name:extra:more'], onA);
  t.equal(bad.code, 2);
  t.match(bad.stderr, `ldm migrate-domain: ${lm.migrateBadTarget('host:name:extra:more')}`);
  t.match(bad.stderr, /ldm migrate-domain \[-f\] \[-n\] -c SOURCE-DOMAIN/);
  const cert = await ldm(['migrate', '-c', 'ldg1', `admin@127.0.0.1:${b.port}`], onA);
  t.equal(cert.code, 2);
  t.match(cert.stderr, lm.migrateCertNoLogin());
  const cancel = await ldm(['cancel-operation', 'everything', 'ldg1'], onA);
  t.equal(cancel.code, 2);
  t.match(cancel.stderr, lm.cancelWhat('everything'));
});

t.test('a password file others can read is refused, and nothing migrates', async (t) => {
  const f = passwordFile(0o644);
  const r = await ldm(['migrate-domain', '-p', f, 'ldg1', `admin@127.0.0.1:${b.port}`], onA);
  t.equal(r.code, 1);
  t.same(lines(r.stderr), [lm.passwordFileOpen(f, '644')]);
  t.equal(r.stdout, '');
  t.same(await a.migrations(), [], 'the source agent was never asked');
  t.equal((await a.listDomain('ldg1'))?.['state'], 'active', 'ldg1 runs on alpha');
});

t.test('dry run that would fail: the reason line, then Oracle\'s summary; exit 1', async (t) => {
  const r = await ldm(['migrate', '-n', '-p', passwordFile(0o600), 'ldg1', `admin@127.0.0.1:${b.port}:taken`], onA);
  t.equal(r.code, 1);
  t.same(lines(r.stderr), [mmsg.nameTaken('taken', 'beta'), mmsg.wouldFail('ldg1')]);
  t.equal(r.stdout, '');
});

t.test('a wrong target password: the login reason, then the summary', async (t) => {
  const r = await ldm(['migrate-domain', '-p', passwordFile(0o600, 'not-the-password\n'), 'ldg1', `admin@127.0.0.1:${b.port}`], onA);
  t.equal(r.code, 1);
  const l = lines(r.stderr);
  t.equal(l.length, 2, r.stderr);
  t.match(l[0], `Login to the Logical Domains Manager on target 127.0.0.1:${b.port} as admin failed`);
  t.equal(l[1], mmsg.failed('ldg1'));
  t.equal((await a.listDomain('ldg1'))?.['state'], 'active', 'ldg1 runs on alpha');
});

t.test('-p with a 0600 file migrates, printing nothing (Oracle); then -c brings it back', async (t) => {
  const there = await ldm(['migrate-domain', '-p', passwordFile(0o600), 'ldg1', `admin@127.0.0.1:${b.port}`], onA);
  t.same(there, { code: 0, signal: null, stdout: '', stderr: '' }, 'success prints nothing');
  t.equal((await b.listDomain('ldg1'))?.['state'], 'active', 'ldg1 runs on beta');
  t.equal(await a.listDomain('ldg1'), undefined, 'and no longer on alpha');

  // Certificate mode, from beta's own socket: beta logs in to alpha as "beta" with its server certificate.
  const back = await ldm(['migrate', '-c', 'ldg1', `127.0.0.1:${a.port}`], { state: b.state });
  t.same(back, { code: 0, signal: null, stdout: '', stderr: '' }, '-c: success prints nothing');
  t.equal((await a.listDomain('ldg1'))?.['state'], 'active', 'ldg1 runs on alpha again');
  t.equal(await b.listDomain('ldg1'), undefined, 'and no longer on beta');
  const row = (await a.migrations()).filter((m) => m.domain === 'ldg1').at(-1);
  t.match(row, { role: 'target', peer: 'beta', status: 'completed' }, 'alpha received it from beta');
});

t.test('on a terminal: the prompt without echo, and the live line with a percent', async (t) => {
  // script(1) gives ldm a pseudo-terminal; the password is typed once the prompt shows (raw mode is on by then).
  const cmd = [process.execPath, ...LDM_ARGS, 'migrate', 'ldg1', `admin@127.0.0.1:${b.port}`].map((s) => `'${s}'`).join(' ');
  const run = startProgram('script', ['-qfec', cmd, '/dev/null'], { state: a.state, timeoutMs: 40_000 });
  await waitOutput(run, (out) => out.includes('Target Password:'), 20_000, 'the prompt');
  run.proc.stdin.write(`${ADMIN.password}\r`);
  const r = await run.done;
  run.proc.stdin.end();
  t.equal(r.code, 0, r.stdout);
  t.match(r.stdout, /^Target Password: \r?\n/, 'the prompt, then a line end once typed');
  t.notMatch(r.stdout, ADMIN.password, 'the password is not echoed');
  t.match(r.stdout, /\rMigrating ldg1: precopy +\d{1,2}% \[[#.]{16}\] +[\d.]+ [KMG]?B\/s ETA \d+:\d\d pass 1\x1b\[K/, 'a pre-copy line with its percent, rate, ETA and pass');
  t.match(r.stdout, /\rMigrated ldg1: [\d.]+ [KMG]?B in [\d.]+ s, \d+ pass(es)?, downtime \d+ ms\x1b\[K\r?\n/, 'ends on the final figures');
  t.equal((await b.listDomain('ldg1'))?.['state'], 'active', 'ldg1 runs on beta');
});

t.test('SIGINT during a migration cancels it; the source domain stays active', async (t) => {
  const run = startLdm(['migrate-domain', '-p', passwordFile(0o600), 'big', `admin@127.0.0.1:${b.port}`], { ...onA, input: '' });
  await waitFor(async () => (await a.migration('big'))?.['phase'] === 'precopy', 20_000, 'big in pre-copy');
  run.proc.kill('SIGINT');
  const r = await run.done;
  t.equal(r.code, 1);
  t.same(lines(r.stderr), [lm.migrateInterrupted('SIGINT', 'big'), rm.cancelled('big'), mmsg.failed('big')]);
  const info = await a.listDomain('big');
  t.equal(info?.['state'], 'active', 'big is active on alpha');
  t.equal(column6(info?.['flags']), '-', `no migration flag (flags ${info?.['flags']})`);
  t.equal(await b.listDomain('big'), undefined, 'beta kept nothing');
  t.match((await a.migrations()).filter((m) => m.domain === 'big').at(-1), { status: 'cancelled' });
});

t.test('cancel-operation migration: nothing to cancel is a failure naming the domain', async (t) => {
  const r = await ldm(['cancel-operation', 'migration', 'big'], onA);
  t.equal(r.code, 1);
  t.same(lines(r.stderr), [objectMessages.noMigration('big')]);
});

t.test('cancel-operation migration from another command stops a running migrate-domain', async (t) => {
  const run = startLdm(['migrate', '-p', passwordFile(0o600), 'big', `admin@127.0.0.1:${b.port}`], { ...onA, input: '' });
  await waitFor(async () => (await a.migration('big'))?.['status'] === 'active', 20_000, 'big in pre-copy');
  const c = await ldm(['cancel-operation', 'migration', 'big'], onA);
  t.same({ code: c.code, stdout: c.stdout, stderr: c.stderr }, { code: 0, stdout: '', stderr: '' }, 'the cancel succeeds silently');
  const r = await run.done;
  t.equal(r.code, 1);
  t.same(lines(r.stderr), [rm.cancelled('big'), mmsg.failed('big')], 'the migrating command prints the agent\'s two lines');
  t.equal(column6((await a.listDomain('big'))?.['flags']), '-');
});
