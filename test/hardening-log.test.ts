/**
 * The log (issue 13, items 9 and 10): what a peer sends reaches the log escaped, a
 * flood of one message is summarized, and a log reader that goes away (EPIPE) never
 * takes the agent down. The last runs the real daemon with pipes the test closes.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, escapeControls } from '../agent/log.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { startDaemon } from './helpers/daemon.ts';
import { HEADER, RawPeer } from './helpers/raw.ts';
import { ok } from './helpers/session.ts';
import { request } from './helpers/requests.ts';

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202e]/;

t.test('control characters are escaped in the message, the component and every field', async (t) => {
  const lines: string[] = [];
  const log = createLogger('debug', 'agent\u001b[31m', (l) => lines.push(l)).child('x\ny');
  log.warn('login by \u001b]0;pwned\u0007', {
    user: '\u001b[2Jroot\nFAKE info ldm-agent: authenticated',
    'k\u0000': 'v',
    spaced: 'a b\u001b',
    bare: '\u001b[31mred',
    nested: { name: '\u009b6n', rtl: '\u202egnp.exe' },
    big: 10n,
  });
  t.equal(lines.length, 1);
  const line = lines[0]!;
  t.equal(line.indexOf('\n'), line.length - 1, 'one line: the newline in a field is escaped');
  t.notMatch(line.slice(0, -1), RAW_CONTROL, 'no control character is written raw');
  t.match(line, /agent\\x1b\[31m\/x\\x0ay: login by \\x1b\]0;pwned\\x07/, 'component and message escaped');
  t.match(line, /user="\\x1b\[2Jroot\\x0aFAKE info/, 'a string field: quoted, its ESC and newline escaped');
  t.match(line, /k\\x00=v/, 'a key');
  t.match(line, / bare="\\x1b\[31mred"/, 'a one-word value with an ESC is quoted and escaped');
  t.match(line, /\\x9b6n/, 'a C1 control inside an object');
  t.match(line, /\\u202egnp\.exe/, 'a right-to-left override');
  t.match(line, /big=10/, 'a bigint does not throw');
  t.equal(escapeControls('plain text, ünïcödé'), 'plain text, ünïcödé', 'ordinary text is untouched');
});

t.test('a field that cannot be written loses the line, not the caller', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', 'c', (l) => lines.push(l));
  const cycle: Record<string, unknown> = {};
  cycle['self'] = cycle;
  log.info('cyclic', { cycle });
  const hostile = {
    get boom() {
      throw new Error('getter');
    },
  };
  t.doesNotThrow(() => log.info('getter', hostile as unknown as Record<string, unknown>));
  const throwing = createLogger('info', 'c', () => {
    throw new Error('EPIPE');
  });
  t.doesNotThrow(() => throwing.error('nowhere to go'));
  t.match(lines[0], /cyclic cycle=\[object Object\]/);
});

t.test('the same message more than N times per interval is summarized', async (t) => {
  let now = 1_000_000;
  const lines: string[] = [];
  const log = createLogger('info', 'ldm-agent', (l) => lines.push(l), { repeat: { max: 3, intervalMs: 1000 }, now: () => now });
  const conn = log.child('xmpp');
  for (let i = 0; i < 50; i++) conn.warn('connection refused: limit reached', { address: `10.0.0.${i}` });
  conn.warn('another message');
  conn.info('connection refused: limit reached'); // another level: its own count
  log.warn('connection refused: limit reached'); // another component: its own count
  t.equal(lines.length, 6, 'three of the flood, then each different message');
  t.same(
    lines.slice(0, 3).map((l) => /address=(\S+)/.exec(l)![1]),
    ['10.0.0.0', '10.0.0.1', '10.0.0.2'],
    'the first three are written as they come',
  );
  now += 1000;
  conn.warn('connection refused: limit reached', { address: '10.0.0.99' });
  t.match(lines[6], /warn ldm-agent\/xmpp: connection refused: limit reached \(repeated 47 more times in 1 s, not shown\)\n$/, 'the next interval starts with the summary');
  t.match(lines[7], /address=10\.0\.0\.99/, 'then the line itself');
  t.equal(lines.length, 8);
});

t.test('one message from many connections counts as one (the instance is not part of the key)', async (t) => {
  const lines: string[] = [];
  const xmpp = createLogger('info', 'ldm-agent', (l) => lines.push(l), { repeat: { max: 2, intervalMs: 60_000 } }).child('xmpp');
  for (let i = 0; i < 20; i++) xmpp.child(`conn:${i.toString(16).padStart(4, '0')}`).info('stream error', { reason: 'not-well-formed' });
  t.equal(lines.length, 2, 'two lines for twenty connections');
  t.match(lines[1], /ldm-agent\/xmpp\/conn:0001: stream error reason=not-well-formed/, 'each line still names its connection');
});

t.test('a flood that stops still gets its summary line', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', 'c', (l) => lines.push(l), { repeat: { max: 2, intervalMs: 100 } });
  for (let i = 0; i < 10; i++) log.info('peer closed');
  t.equal(lines.length, 2);
  await new Promise((r) => setTimeout(r, 250));
  t.equal(lines.length, 3, 'a timer wrote the summary');
  t.match(lines[2], /peer closed \(repeated 8 more times in 0\.1 s, not shown\)/);
});

t.test('a SASL user name with an ESC sequence reaches the log escaped', async (t) => {
  const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });
  // No white space: written bare before, so the terminal got the ESC sequences as they came.
  const evil = '\u001b[2J\u001b]0;owned\u0007root\u009b31m';
  await t.rejects(
    LdmClient.connect({
      host: '127.0.0.1',
      port: agent.port,
      auth: { kind: 'password', user: evil, password: 'x' },
      ca: readFileSync(agent.certPaths.ca, 'utf8'),
      servername: 'localhost',
    }),
  );
  const failed = agent.logLines.filter((l) => l.includes('authentication failed'));
  t.equal(failed.length, 1, 'the failed login is logged once');
  t.match(failed[0], /user="\\x1b\[2J\\x1b\]0;owned\\x07root\\x9b31m"/, 'with its user name escaped (and quoted)');
  for (const line of agent.logLines) t.notMatch(line.slice(0, -1), RAW_CONTROL, `no raw control character: ${JSON.stringify(line)}`);
});

t.test('the daemon outlives the reader of its stdout and stderr (EPIPE)', async (t) => {
  const daemon = await startDaemon(t);
  // Close the read ends of both pipes: the next write of the daemon gets EPIPE.
  daemon.proc.stdout.destroy();
  daemon.proc.stderr.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const ca = readFileSync(join(daemon.dir, 'certs', 'ca.pem'), 'utf8');
  // Log lines: failed logins (warn), and peers that break the stream (info).
  for (let i = 0; i < 3; i++) {
    await t.rejects(LdmClient.connect({ host: '127.0.0.1', port: daemon.port, auth: { kind: 'password', user: `nobody${i}`, password: 'x' }, ca, servername: 'localhost' }));
    const peer = await RawPeer.tcp(daemon.port);
    peer.write(`${HEADER}<<<not xml`);
    await peer.closedWithin(2000);
    peer.destroy();
  }
  t.equal(daemon.proc.exitCode, null, 'still running after the log lines');
  t.equal(daemon.proc.signalCode, null);
  const client = await LdmClient.connect({ path: join(daemon.dir, 'var', 'ldmd.sock'), auth: { kind: 'local' } });
  t.ok(ok(await client.request(request('list-domain'))), 'and answering');
  await client.close();
  // Stopping prints to stdout too.
  t.equal(await daemon.stop(), 0, 'it stops cleanly on SIGTERM');
});
