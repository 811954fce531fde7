/**
 * `ldm-agent certs init [--hostname NAME]... [--listen HOST:PORT]...`,
 * `ldm-agent certs issue NAME --out DIR`, `ldm-agent certs trust FILE`
 * (contract.md). `args` are the words after `certs`; `certDir` is `--certs`.
 * Exit status: 0 done, 1 failed, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { certMessages } from '../messages.ts';
import { ensureCerts, issueClientCert, trustCert, certificateSummary, certPaths } from '../auth/certs.ts';
import { readFile } from 'node:fs/promises';
import { isParseArgsError, processIo, UsageError, type CliIo } from './io.ts';

/** The host part of `HOST:PORT` or `[V6]:PORT` (a bare host is taken as is). */
export function listenHost(listen: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(listen);
  if (bracketed) return bracketed[1]!;
  const colons = listen.split(':').length - 1;
  if (colons === 1) return listen.slice(0, listen.lastIndexOf(':'));
  return listen; // a bare host name, IPv4 address or unbracketed IPv6 address
}

async function init(rest: string[], certDir: string, io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: { hostname: { type: 'string', multiple: true }, listen: { type: 'string', multiple: true } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 0) throw new UsageError();
  const result = await ensureCerts(certDir, {
    hostnames: values.hostname ?? [],
    ips: (values.listen ?? []).map(listenHost),
  });
  for (const path of result.created) io.stdout.write(certMessages.created(path) + '\n');
  if (result.created.length === 0) io.stdout.write(certMessages.allPresent(certDir) + '\n');
  const paths = result.paths;
  io.stdout.write(certMessages.labelled('CA', certMessages.summaryLine(certificateSummary(await readFile(paths.ca)))) + '\n');
  io.stdout.write(certMessages.labelled('server', certMessages.summaryLine(certificateSummary(await readFile(paths.server)))) + '\n');
  if (result.uncovered.length > 0)
    io.stderr.write(certMessages.uncovered(paths.server, paths.serverKey, result.uncovered) + '\n');
  return 0;
}

async function issue(rest: string[], certDir: string, io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: { out: { type: 'string', short: 'o' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError();
  if (values.out === undefined) throw new UsageError(certMessages.outRequired());
  const issued = await issueClientCert(certDir, positionals[0]!, values.out);
  io.stdout.write(certMessages.created(issued.cert) + '\n');
  io.stdout.write(certMessages.created(issued.key) + '\n');
  io.stdout.write(certMessages.labelled('client', certMessages.summaryLine(issued.summary)) + '\n');
  io.stdout.write(certMessages.issueHint(issued.cert, issued.key, certPaths(certDir).ca) + '\n');
  return 0;
}

async function trust(rest: string[], certDir: string, io: CliIo): Promise<number> {
  const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError();
  for (const t of await trustCert(certDir, positionals[0]!))
    io.stdout.write((t.added ? certMessages.trusted(t.path, t.summary) : certMessages.alreadyTrusted(t.path, t.summary)) + '\n');
  return 0;
}

/** Runs `ldm-agent certs ...`; `args` are the words after `certs`. Resolves to the exit status. */
export async function runCerts(args: string[], certDir: string, io: CliIo = processIo()): Promise<number> {
  const [verb, ...rest] = args;
  try {
    switch (verb) {
      case 'init':
        return await init(rest, certDir, io);
      case 'issue':
        return await issue(rest, certDir, io);
      case 'trust':
        return await trust(rest, certDir, io);
      case '-h':
      case '--help':
        io.stdout.write(certMessages.usage() + '\n');
        return 0;
      default:
        throw new UsageError();
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      const detail = err instanceof UsageError ? err.detail : err.message;
      if (detail) io.stderr.write(certMessages.failed(verb ?? '', detail) + '\n');
      io.stderr.write(certMessages.usage() + '\n');
      return 2;
    }
    io.stderr.write(certMessages.failed(verb ?? '', err instanceof Error ? err.message : String(err)) + '\n');
    return 1;
  }
}
