/** `ldm-agent`: the daemon and its admin subcommands (contract.md). */
import { loadConfig } from '../config.ts';
import { startAgent } from '../daemon.ts';
import { ErrorCodes, LdmError } from '../errors.ts';
import { safeWriter } from '../log.ts';
import { cliMessages, daemonMessages } from '../messages.ts';
import { runCerts } from './certs.ts';
import { runUser } from './user.ts';
import { runValidate } from './validate.ts';

/** Admin subcommands take --state/--certs like the daemon, anywhere among their words. */
function adminDirs(args: string[]): { rest: string[]; state: string; certs: string } {
  const rest: string[] = [];
  let state = process.env.LDM_AGENT_STATE ?? './var';
  let certs = './certs';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === '--state' || flag === '--certs') {
      const value = inline ?? args[++i];
      if (value === undefined) throw new LdmError(ErrorCodes.USAGE, cliMessages.needsDirectory(flag));
      if (flag === '--state') state = value;
      else certs = value;
    } else rest.push(a);
  }
  return { rest, state, certs };
}

// Output whose reader went away (`ldm-agent | head`, a killed `cat`) is dropped: an
// EPIPE on stdout or stderr must never end the agent (log.ts, safeWriter).
const stdout = safeWriter(process.stdout);
const stderr = safeWriter(process.stderr);

async function daemon(argv: string[]): Promise<number> {
  const config = loadConfig(argv);
  const agent = await startAgent(config, (line) => stdout(line + '\n'));
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stdout(daemonMessages.stopping(signal) + '\n');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await agent.stop();
  stdout(daemonMessages.stopped() + '\n');
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'validate':
      return runValidate(rest);
    case 'user': {
      const dirs = adminDirs(rest);
      return runUser(dirs.rest, dirs.state);
    }
    case 'certs': {
      const dirs = adminDirs(rest);
      return runCerts(dirs.rest, dirs.certs);
    }
    case '-h':
    case '--help':
      process.stdout.write(cliMessages.agentUsage() + '\n');
      return 0;
    default:
      if (sub !== undefined && !sub.startsWith('-')) {
        process.stderr.write(cliMessages.unknownSubcommand(sub) + '\n' + cliMessages.agentUsage() + '\n');
        return 2;
      }
      return daemon(argv);
  }
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    // A socket still closing must not keep a finished command alive; unref'd, so it never delays one.
    setTimeout(() => process.exit(status), 500).unref();
  },
  (err: unknown) => {
    const usage = err instanceof LdmError && err.code === ErrorCodes.USAGE;
    stderr((usage ? `ldm-agent: ${(err as Error).message}\n${cliMessages.agentUsage()}` : daemonMessages.startFailed((err as Error).message)) + '\n');
    process.exitCode = usage ? 2 : 1;
  },
);
