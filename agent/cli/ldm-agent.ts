/** `ldm-agent`: the daemon and its admin subcommands (contract.md). */
import { cliMessages } from '../messages.ts';
import { runValidate } from './validate.ts';

function main(argv: string[]): number {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'validate':
      return runValidate(rest);
    case '-h':
    case '--help':
      process.stdout.write(cliMessages.agentUsage() + '\n');
      return 0;
    case undefined:
      process.stderr.write(cliMessages.daemonNotYet() + '\n');
      return 1;
    default:
      if (sub.startsWith('-')) {
        process.stderr.write(cliMessages.daemonNotYet() + '\n');
        return 1;
      }
      process.stderr.write(cliMessages.unknownSubcommand(sub) + '\n' + cliMessages.agentUsage() + '\n');
      return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
