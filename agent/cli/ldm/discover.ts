/** `ldm` subcommands: (being written). */
import type { LdmCommand } from './command.ts';

export const commands: LdmCommand[] = [];
