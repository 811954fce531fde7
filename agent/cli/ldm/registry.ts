/** Every `ldm` subcommand, by module (each module exports its `commands`). */
import type { LdmCommand } from './command.ts';
import { commands as change } from './change.ts';
import { commands as discover } from './discover.ts';
import { commands as events } from './events.ts';
import { commands as list } from './list.ts';
import { commands as migrate } from './migrate.ts';
import { commands as raw } from './raw.ts';

export const COMMANDS: readonly LdmCommand[] = [...list, ...change, ...migrate, ...events, ...raw, ...discover];
