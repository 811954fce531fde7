import t from 'tap';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  certificateSummary,
  ensureCerts,
  issueClientCert,
  loadTrust,
  trustCert,
  trustedFingerprints,
} from '../agent/auth/certs.ts';
import { runCerts } from '../agent/cli/certs.ts';
import type { CliIo } from '../agent/cli/io.ts';
import { ErrorCodes } from '../agent/errors.ts';

function fakeIo(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdin: process.stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    out: () => out,
    err: () => err,
  };
}

const mode = async (f: string) => (await stat(f)).mode & 0o777;

/** A TLS server that demands a client certificate chaining to `loadTrust(dir)` and answers with its CN. */
async function startServer(dir: string, strict = true): Promise<{ port: number; rejections: string[]; close: () => Promise<void> }> {
  const rejections: string[] = [];
  const server = tls.createServer(
    {
      cert: await readFile(join(dir, 'server.pem')),
      key: await readFile(join(dir, 'server-key.pem')),
      ca: loadTrust(dir),
      requestCert: true,
      rejectUnauthorized: strict,
      minVersion: 'TLSv1.2',
    },
    (socket) => {
      const peer = socket.getPeerCertificate();
      const why = socket.authorized ? '' : ` error=${String(socket.authorizationError)}`;
      socket.end(`authorized=${socket.authorized}${why} CN=${peer.subject.CN} fp=${peer.fingerprint256}\n`);
    },
  );
  server.on('tlsClientError', (err) => rejections.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    rejections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Outcome = { ok: true; line: string; serverVerified: boolean; fingerprint?: string } | { ok: false; error: string };

/** Connects over 127.0.0.1, verifying the server against `caFile` as "localhost". */
async function connect(port: number, caFile: string, certFile: string, keyFile: string): Promise<Outcome> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: await readFile(caFile),
    cert: await readFile(certFile),
    key: await readFile(keyFile),
  });
  return new Promise((resolve) => {
    let data = '';
    let serverVerified = false;
    socket.on('secureConnect', () => (serverVerified = socket.authorized));
    socket.on('data', (chunk) => (data += chunk));
    socket.on('error', (err) => resolve({ ok: false, error: err.message }));
    socket.on('close', () => {
      if (!data) return resolve({ ok: false, error: 'closed without an answer' });
      const [line, fingerprint] = data.trim().split(' fp=');
      resolve({ ok: true, line: line!, serverVerified, fingerprint: fingerprint! });
    });
  });
}

t.test('ensureCerts creates the CA, the server certificate and trust/, fast, and is idempotent', async (t) => {
  const dir = join(t.testdir(), 'certs');
  const start = performance.now();
  const first = await ensureCerts(dir, { hostnames: ['t4-a'], ips: ['192.0.2.10'] });
  const elapsed = performance.now() - start;
  t.comment(`first ensureCerts: ${elapsed.toFixed(0)} ms`);
  t.ok(elapsed < 5000, `first start took ${elapsed.toFixed(0)} ms`);
  const p = first.paths;
  t.same([...first.created].sort(), [p.ca, p.caKey, p.server, p.serverKey, p.trustDir].sort());
  t.equal(await mode(p.caKey), 0o600);
  t.equal(await mode(p.serverKey), 0o600);
  t.ok((await stat(p.trustDir)).isDirectory());

  const ca = new X509Certificate(await readFile(p.ca));
  t.equal(ca.ca, true);
  t.match(ca.subject, /CN=ldm-agent CA t4-a/);
  t.ok(ca.verify(ca.publicKey), 'the CA is self-signed');
  const server = new X509Certificate(await readFile(p.server));
  t.ok(server.verify(ca.publicKey), 'the server certificate is signed by the CA');
  t.equal(server.ca, false);
  t.same(server.keyUsage?.slice().sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
  for (const name of ['localhost', 't4-a']) t.equal(server.checkHost(name), name, `SAN DNS ${name}`);
  for (const ip of ['127.0.0.1', '::1', '192.0.2.10']) t.equal(server.checkIP(ip), ip, `SAN IP ${ip}`);

  const summary = certificateSummary(await readFile(p.server));
  t.equal(summary.subjectCN, 't4-a');
  t.equal(summary.issuerCN, 'ldm-agent CA t4-a');
  t.match(summary.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.ok(summary.validFrom < new Date() && summary.validTo > new Date());

  const before = await Promise.all([p.ca, p.caKey, p.server, p.serverKey].map((f) => readFile(f, 'utf8')));
  const second = await ensureCerts(dir, { hostnames: ['t4-a', 'elsewhere'], ips: ['192.0.2.10', '198.51.100.7'] });
  t.same(second.created, [], 'nothing created the second time');
  t.same(second.uncovered, ['elsewhere', '198.51.100.7'], 'names the existing server certificate lacks');
  const after = await Promise.all([p.ca, p.caKey, p.server, p.serverKey].map((f) => readFile(f, 'utf8')));
  t.same(after, before, 'nothing rewritten');
});

t.test('ensureCerts refuses half pairs instead of overwriting', async (t) => {
  const dir = t.testdir();
  const { paths } = await ensureCerts(dir);
  await unlink(paths.server);
  await t.rejects(ensureCerts(dir), { code: ErrorCodes.CERTS_DAMAGED, message: new RegExp(paths.serverKey) });
  await unlink(paths.serverKey);
  const again = await ensureCerts(dir);
  t.same(again.created.sort(), [paths.server, paths.serverKey].sort(), 'the server pair is reissued by the existing CA');
  const ca = new X509Certificate(await readFile(paths.ca));
  t.ok(new X509Certificate(await readFile(paths.server)).verify(ca.publicKey));
});

t.test('client certificates over real TLS: issued accepted, foreign CA refused until trusted', async (t) => {
  const root = t.testdir();
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  await ensureCerts(dirA, { hostnames: ['host-a'] });
  await ensureCerts(dirB, { hostnames: ['host-b'] });

  const alice = await issueClientCert(dirA, 'alice', join(root, 'alice'));
  t.equal(alice.cert, join(root, 'alice', 'alice.pem'));
  t.equal(alice.key, join(root, 'alice', 'alice-key.pem'));
  t.equal(await mode(alice.key), 0o600);
  t.equal(alice.summary.subjectCN, 'alice');
  t.equal(alice.summary.issuerCN, 'ldm-agent CA host-a');
  const aliceX = new X509Certificate(await readFile(alice.cert));
  t.same(aliceX.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only');
  await t.rejects(issueClientCert(dirA, 'alice', join(root, 'alice')), { code: ErrorCodes.CERT_EXISTS });
  await t.rejects(issueClientCert(dirA, 'no/slash', root), { code: ErrorCodes.USER_NAME });
  await t.rejects(issueClientCert(join(root, 'empty'), 'zed', root), { code: ErrorCodes.CERTS_DAMAGED, message: /certs init/ });

  const mallory = await issueClientCert(dirB, 'mallory', join(root, 'mallory'));
  const caA = join(dirA, 'ca.pem');

  let server = await startServer(dirA);
  const ok = await connect(server.port, caA, alice.cert, alice.key);
  t.match(ok, { ok: true, line: 'authorized=true CN=alice', serverVerified: true }, 'alice gets in; the client verified the server as localhost');

  const refused = await connect(server.port, caA, mallory.cert, mallory.key);
  t.equal(refused.ok, false, 'a certificate from another CA is refused');
  t.comment(`client saw: ${refused.ok ? '' : refused.error}; server saw: ${server.rejections.join('; ')}`);
  t.ok(server.rejections.length > 0, 'the server reports the refused handshake');
  await server.close();

  // The same handshake with rejectUnauthorized: false shows why.
  server = await startServer(dirA, false);
  const lenient = await connect(server.port, caA, mallory.cert, mallory.key);
  t.match(lenient, { ok: true, line: /^authorized=false error=UNABLE_TO_\w+ CN=mallory$/ }, 'authorized false');
  await server.close();

  const trusted = await trustCert(dirA, join(dirB, 'ca.pem'));
  t.equal(trusted.length, 1);
  t.equal(trusted[0]!.added, true);
  t.match(trusted[0]!.path, /trust\/ldm-agent_CA_host-b-[0-9a-f]{16}\.pem$/);
  t.equal(loadTrust(dirA).length, 2);
  const again = await trustCert(dirA, join(dirB, 'ca.pem'));
  t.equal(again[0]!.added, false, 'trusting twice is harmless');
  t.equal(again[0]!.path, trusted[0]!.path, 'stable file name');

  server = await startServer(dirA);
  const nowOk = await connect(server.port, caA, mallory.cert, mallory.key);
  t.match(nowOk, { ok: true, line: 'authorized=true CN=mallory', serverVerified: true }, 'accepted once its CA is trusted');
  await server.close();
});

t.test('a peer certificate (not its CA) in trust/ is honoured by fingerprint', async (t) => {
  const root = t.testdir();
  const dirA = join(root, 'a');
  const dirC = join(root, 'c');
  await ensureCerts(dirA);
  await ensureCerts(dirC);
  const peer = await issueClientCert(dirC, 'peer-host', join(root, 'peer'));
  await trustCert(dirA, peer.cert);
  t.ok(trustedFingerprints(dirA).has(peer.summary.fingerprint256));
  t.notOk(trustedFingerprints(dirA).has(certificateSummary(await readFile(join(dirC, 'ca.pem'))).fingerprint256));
  const server = await startServer(dirA, false);
  const outcome = await connect(server.port, join(dirA, 'ca.pem'), peer.cert, peer.key);
  await server.close();
  // node:tls alone does not anchor trust in a CA-issued leaf; the pin does.
  t.match(outcome, { ok: true, line: /^authorized=false .*CN=peer-host$/, fingerprint: peer.summary.fingerprint256 });
});

t.test('trustCert refuses what is not a certificate', async (t) => {
  const dir = t.testdir();
  const { paths } = await ensureCerts(dir);
  const garbage = join(dir, 'garbage.pem');
  await writeFile(garbage, 'hello, I am not a certificate\n');
  await t.rejects(trustCert(dir, garbage), { code: ErrorCodes.CERT_INVALID, message: new RegExp(garbage) });
  const broken = join(dir, 'broken.pem');
  await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  await t.rejects(trustCert(dir, broken), { code: ErrorCodes.CERT_INVALID, message: new RegExp(broken) });
  await t.rejects(trustCert(dir, paths.caKey), { code: ErrorCodes.CERT_INVALID, message: /private key/ });
  await t.rejects(trustCert(dir, join(dir, 'missing.pem')), { code: ErrorCodes.FILE });
  t.equal(loadTrust(dir).length, 1, 'nothing was added');

  // A broken file dropped into trust/ by hand is named when loading.
  const dropped = join(paths.trustDir, 'dropped.pem');
  await writeFile(dropped, 'junk');
  t.throws(() => loadTrust(dir), { code: ErrorCodes.CERT_INVALID, message: new RegExp(dropped) });
});

t.test('runCerts: init, issue, trust and their exit codes', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'certs');
  let io = fakeIo();
  t.equal(await runCerts(['init', '--hostname', 't4-b', '--listen', '127.0.0.2:6482'], dir, io), 0, io.err());
  t.match(io.out(), `created ${join(dir, 'server-key.pem')}`);
  t.match(io.out(), /CA: CN=ldm-agent CA t4-b, issuer CN=ldm-agent CA t4-b, SHA-256 /);
  const server = new X509Certificate(await readFile(join(dir, 'server.pem')));
  t.equal(server.checkIP('127.0.0.2'), '127.0.0.2', 'the --listen address is in the SAN');

  io = fakeIo();
  t.equal(await runCerts(['init'], dir, io), 0);
  t.match(io.out(), /already present/);
  t.notMatch(io.out(), /created/);

  io = fakeIo();
  t.equal(await runCerts(['issue', 'bob', '--out', join(root, 'bob')], dir, io), 0, io.err());
  t.match(io.out(), `created ${join(root, 'bob', 'bob.pem')}`);
  t.equal(await mode(join(root, 'bob', 'bob-key.pem')), 0o600);
  io = fakeIo();
  t.equal(await runCerts(['issue', 'bob', '--out', join(root, 'bob')], dir, io), 1);
  t.match(io.err(), /already exists/);

  const other = join(root, 'other');
  await ensureCerts(other, { hostnames: ['t4-c'] });
  io = fakeIo();
  t.equal(await runCerts(['trust', join(other, 'ca.pem')], dir, io), 0, io.err());
  t.match(io.out(), /trusted .*ldm-agent_CA_t4-c-/);
  io = fakeIo();
  t.equal(await runCerts(['trust', join(other, 'ca-key.pem')], dir, io), 1);
  t.match(io.err(), /private key/);

  for (const args of [[], ['frob'], ['issue'], ['issue', 'bob'], ['trust'], ['init', 'extra'], ['init', '--bogus']]) {
    io = fakeIo();
    t.equal(await runCerts(args, dir, io), 2, args.join(' '));
    t.match(io.err(), /usage: ldm-agent certs init/);
  }
});
