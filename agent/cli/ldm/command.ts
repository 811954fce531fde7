/**
 * What every `ldm` subcommand is: its names (Oracle's, aliases included), a usage
 * line, and a run function that gets the context and its own arguments and returns
 * the exit status (0 success, 1 the command failed, 2 bad usage: throw UsageError).
 */
import type { LdmContext } from './context.ts';

export interface LdmCommand {
  /** The first is the name usage shows; the others are aliases (`list`, `ls` for `list-domain`). */
  names: readonly string[];
  /** One usage line, without the leading `ldm `. */
  usage: string;
  run(ctx: LdmContext, args: string[]): Promise<number>;
}
