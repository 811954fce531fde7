// The executables as installed: bin/ldm-agent.js and bin/ldm.js running the bundles that
// scripts/build.mjs makes (npm install's prepare step). Every other test runs the
// TypeScript sources; this one fails when the bundles do not work.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliMessages, daemonMessages } from '../agent/messages.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { LIST_DOMAIN } from './helpers/raw.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = import.meta.resolve('tsx');
const TIMEOUT = 60_000;

// An installed layout in a temporary directory: bin/ copied, dist/ freshly built there
// (never the project's own dist/, which may be older than the sources), node_modules
// linked for libxml2-wasm, which the bundle leaves to Node.
const install = mkdtempSync(join(tmpdir(), 'ldm-bins-'));
t.teardown(() => rmSync(install, { recursive: true, force: true }));
cpSync(join(ROOT, 'bin'), join(install, 'bin'), { recursive: true });
symlinkSync(join(ROOT, 'node_modules'), join(install, 'node_modules'), 'dir');
const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), join(install, 'dist')], { encoding: 'utf8', timeout: TIMEOUT });
if (build.status !== 0) throw new Error(`scripts/build.mjs failed: ${build.stdout}${build.stderr}`);

const bin = (name: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(install, 'bin', `${name}.js`), ...args], { encoding: 'utf8', timeout: TIMEOUT });
const fromSources = (name: string, ...args: string[]) =>
  spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'agent/cli', `${name}.ts`), ...args], { encoding: 'utf8', timeout: TIMEOUT });

t.test('ldm-agent --help prints the usage', async (t) => {
  const r = bin('ldm-agent', '--help');
  t.equal(r.stderr, '');
  t.equal(r.stdout, cliMessages.agentUsage() + '\n');
  t.equal(r.status, 0);
});

t.test('ldm answers as its sources do', async (t) => {
  const bundled = bin('ldm', '--help');
  const sources = fromSources('ldm', '--help');
  t.same({ status: bundled.status, stdout: bundled.stdout, stderr: bundled.stderr }, { status: sources.status, stdout: sources.stdout, stderr: sources.stderr });
});

t.test('ldm-agent validate finds the schemas and loads libxml2-wasm from the bundle', async (t) => {
  const example = join(ROOT, 'xml-examples/requests/list-domain.xml');
  const good = bin('ldm-agent', 'validate', example);
  t.equal(good.stdout, `${example}: valid\n`, good.stderr);
  t.equal(good.status, 0);

  // Well formed and a request by our decoder's rules: only the schema refuses the extra element.
  const dir = mkdtempSync(join(tmpdir(), 'ldm-bins-validate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'extra-element.xml');
  writeFileSync(bad, '<?xml version="1.0"?>\n<LDM_interface version="1.3">\n  <cmd>\n    <action>list-domain</action>\n    <surplus/>\n  </cmd>\n</LDM_interface>\n');
  const bundled = bin('ldm-agent', 'validate', bad);
  t.not(bundled.status, 0, 'refused');
  t.match(bundled.stdout + bundled.stderr, new RegExp(`${bad}:5: .*surplus`), 'by the schema, at its line');
  const sources = fromSources('ldm-agent', 'validate', bad);
  t.same({ status: bundled.status, stdout: bundled.stdout, stderr: bundled.stderr }, { status: sources.status, stdout: sources.stdout, stderr: sources.stderr }, 'as the sources say it');
});

t.test('the daemon from the bundle starts, answers on its socket and stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-bins-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, 'var');
  const proc = spawn(
    process.execPath,
    [join(install, 'bin/ldm-agent.js'), '--listen', '127.0.0.1:0', '--http', 'off', '--state', state, '--certs', join(dir, 'certs'), '--hostname', 'test-host'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${out}${err}`)), TIMEOUT);
    proc.stdout.on('data', () => {
      // `try: ...` is the last line of the start-up banner.
      if (/^try: /m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', () => reject(new Error(`daemon exited: ${out}${err}`)));
  });
  t.match(out, /XML interface listening on 127\.0\.0\.1:\d+/);

  const client = await LdmClient.connect({ path: join(state, 'ldmd.sock'), auth: { kind: 'local' } });
  const answer = await client.request(LIST_DOMAIN);
  await client.close();
  t.equal(answer.response?.status, 'success', 'list-domain answered');
  t.match(JSON.stringify(answer), /"primary"/, 'with the primary domain');

  proc.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match(out, daemonMessages.stopped());
  t.equal(err, '');
});

t.test('a bin without its bundle says how to build it, without a stack trace', async (t) => {
  const bare = join(install, 'bare');
  cpSync(join(ROOT, 'bin'), join(bare, 'bin'), { recursive: true });
  for (const name of ['ldm-agent', 'ldm']) {
    const r = spawnSync(process.execPath, [join(bare, 'bin', `${name}.js`), '--help'], { encoding: 'utf8', timeout: TIMEOUT });
    t.equal(r.status, 1, name);
    t.equal(r.stdout, '');
    t.equal(r.stderr, `${name}: ${join(bare, 'dist', `${name}.js`)} is missing: run \`npm install\` (its prepare step builds dist/) or \`npm run build\`\n`);
  }
});

t.test('in a checkout, a bundle older than a source is reported and still runs', async (t) => {
  const checkout = join(install, 'checkout');
  cpSync(join(ROOT, 'bin'), join(checkout, 'bin'), { recursive: true });
  symlinkSync(join(install, 'dist'), join(checkout, 'dist'), 'dir');
  mkdirSync(join(checkout, 'agent/xml'), { recursive: true });
  const source = join(checkout, 'agent/xml/edited.ts');
  writeFileSync(source, 'export {};\n');
  const later = new Date(Date.now() + 60_000);
  utimesSync(source, later, later);
  const r = spawnSync(process.execPath, [join(checkout, 'bin/ldm-agent.js'), '--help'], { encoding: 'utf8', timeout: TIMEOUT });
  t.equal(r.stderr, 'ldm-agent: warning: dist/ is older than the sources in agent/: run `npm run build`\n');
  t.equal(r.stdout, cliMessages.agentUsage() + '\n');
  t.equal(r.status, 0);
});
