/**
 * `ldm`: Oracle's command line over the agent's XML interface. Global options
 * first, then the subcommand and its arguments:
 *
 *   ldm [-H HOST[:PORT]] [-u USER] [--password-file F] [--cert F --key F] [--ca F] SUBCOMMAND ARGS
 *
 * Exit status: 0 success, 1 the command failed (its messages on stderr), 2 bad usage.
 */
import { ldmMessages as m } from '../../messages.ts';
import { parseAgentAddress } from '../../xmpp/address.ts';
import { UsageError, type CliIo } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, LdmContext, type GlobalOptions } from './context.ts';
import { COMMANDS } from './registry.ts';

const VALUE_OPTIONS: Record<string, keyof GlobalOptions> = {
  '-H': 'host',
  '--host': 'host',
  '-u': 'user',
  '--user': 'user',
  '--password-file': 'passwordFile',
  '--cert': 'cert',
  '--key': 'key',
  '--ca': 'ca',
};

const throwUsage = (detail: string): never => {
  throw new UsageError(detail);
};

/** The global options before the subcommand, and where the subcommand starts. */
export function parseGlobals(argv: string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-h' || a === '--help') break;
    const [flag, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
    const key = VALUE_OPTIONS[flag];
    if (!key) throw new UsageError(m.unknownOption(flag));
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(m.optionNeedsValue(flag));
    if (key === 'host') {
      const address = parseAgentAddress(value) ?? throwUsage(m.badHost(value));
      globals.host = address.host;
      globals.port = address.port;
    } else globals[key] = value as never;
  }
  return { globals, rest: argv.slice(i) };
}

export function findCommand(name: string): LdmCommand | undefined {
  return COMMANDS.find((c) => c.names.includes(name));
}

export function usage(): string {
  return [m.usageHead(), ...COMMANDS.map((c) => `       ldm ${c.usage}`)].join('\n');
}

export async function runLdm(argv: string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let ctx: LdmContext | undefined;
  let command: LdmCommand | undefined;
  try {
    const { globals, rest } = parseGlobals(argv);
    const [name, ...args] = rest;
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      io.stdout.write(usage() + '\n');
      return name === undefined ? 2 : 0;
    }
    command = findCommand(name);
    if (!command) throw new UsageError(m.unknownSubcommand(name));
    if (args.length === 1 && (args[0] === '-h' || args[0] === '--help')) {
      io.stdout.write(m.subcommandUsage(command.usage) + '\n');
      return 0;
    }
    ctx = new LdmContext(io, globals, env);
    return await command.run(ctx, args);
  } catch (err) {
    if (err instanceof UsageError) {
      // A subcommand's mistake shows its own usage line: the whole list would bury the line that matters.
      if (err.detail) io.stderr.write(`ldm${command ? ` ${command.names[0]}` : ''}: ${err.detail}\n`);
      io.stderr.write((command ? m.subcommandUsage(command.usage) : usage()) + '\n');
      return 2;
    }
    if (err instanceof CommandError) {
      io.stderr.write(`${err.message}\n`);
      return 1;
    }
    io.stderr.write(m.internal((err as Error).message) + '\n');
    return 1;
  } finally {
    await ctx?.close();
  }
}
