/** `ldm`: the command line (agent/cli/ldm/main.ts). */
import { safeWriter } from '../log.ts';
import { runLdm } from './ldm/main.ts';

const stdout = safeWriter(process.stdout);
const stderr = safeWriter(process.stderr);
const status = await runLdm(process.argv.slice(2), { stdin: process.stdin, stdout: { write: stdout }, stderr: { write: stderr } });
process.exitCode = status;
// A socket still closing must not keep a finished command alive; unref'd, so it never delays one.
setTimeout(() => process.exit(status), 500).unref();
