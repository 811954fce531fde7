/**
 * `ldm-agent user add NAME --role read|write [--password-file F | -p F]`,
 * `ldm-agent user remove NAME`, `ldm-agent user list` (contract.md). They
 * edit STATE/users.json directly, so they work while the daemon is down; a
 * running daemon sees the change within a second and applies it to open
 * sessions too (a removed user's sessions are closed, a new role applies to
 * the next request).
 *
 * `args` are the words after `user`. Exit status: 0 done, 1 failed, 2 bad usage.
 * A password is never printed; it comes from a file only the owner can read,
 * from the terminal without echo, or from one line of a non-terminal stdin.
 */
import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ErrorCodes } from '../errors.ts';
import { authMessages } from '../messages.ts';
import { AuthError, isRole, UserStore, type Role } from '../auth/users.ts';
import { InputCancelled, isParseArgsError, processIo, readHidden, readLine, UsageError, type CliIo } from './io.ts';

const MAX_PASSWORD_FILE = 64 * 1024;

/** The first line of a password file that only its owner can read. */
export async function readPasswordFile(file: string): Promise<string> {
  const refuse = (text: string, cause?: unknown) => new AuthError(ErrorCodes.PASSWORD_FILE, text, { cause });
  // Open first, then check the opened file: no window between the check and the read.
  const handle = await open(file, 'r').catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ENOENT'
      ? refuse(authMessages.passwordFileMissing(file), err)
      : refuse(authMessages.passwordFileUnreadable(file, (err as Error).message), err);
  });
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw refuse(authMessages.passwordFileUnreadable(file, 'is a directory'));
    if ((st.mode & 0o077) !== 0) throw refuse(authMessages.passwordFileOpen(file, st.mode & 0o777));
    const buf = Buffer.alloc(MAX_PASSWORD_FILE);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const line = buf.subarray(0, bytesRead).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (line.length === 0) throw refuse(authMessages.passwordFileEmpty(file));
    return line;
  } finally {
    await handle.close();
  }
}

/** The password from the terminal (twice, no echo) or from one line of stdin. */
async function readPassword(io: CliIo): Promise<string> {
  if (io.stdin.isTTY && io.stdin.setRawMode) {
    const first = await readHidden(io.stdin, io.stderr, authMessages.passwordPrompt());
    if (first.length === 0) throw new AuthError(ErrorCodes.PASSWORD, authMessages.emptyPassword());
    const second = await readHidden(io.stdin, io.stderr, authMessages.passwordPromptAgain());
    if (first !== second) throw new AuthError(ErrorCodes.PASSWORD, authMessages.passwordsDiffer());
    return first;
  }
  const line = await readLine(io.stdin);
  if (line === null || line.length === 0) throw new AuthError(ErrorCodes.PASSWORD, authMessages.noPasswordOnStdin());
  return line;
}

function table(users: { name: string; role: Role }[]): string {
  const width = Math.max(4, ...users.map((u) => u.name.length)) + 2;
  const rows = [['NAME', 'ROLE'], ...users.map((u) => [u.name, u.role])];
  return rows.map(([n, r]) => `${n!.padEnd(width)}${r}\n`).join('');
}

async function add(rest: string[], stateDir: string, io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: { role: { type: 'string' }, 'password-file': { type: 'string', short: 'p' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError();
  const name = positionals[0]!;
  const role = values.role;
  if (role === undefined) throw new UsageError(authMessages.roleRequired());
  if (!isRole(role)) throw new UsageError(authMessages.badRole(role));
  const store = await UserStore.open(stateDir);
  // Refuse early, before asking for a password the user would then type in vain.
  if ((await store.role(name)) !== null) throw new AuthError(ErrorCodes.USER_EXISTS, authMessages.userExists(name));
  const file = values['password-file'];
  const password = file !== undefined ? await readPasswordFile(file) : await readPassword(io);
  await store.add(name, role, password);
  io.stdout.write(authMessages.userAdded(name, role) + '\n');
  return 0;
}

async function remove(rest: string[], stateDir: string, io: CliIo): Promise<number> {
  const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError();
  const store = await UserStore.open(stateDir);
  await store.remove(positionals[0]!);
  io.stdout.write(authMessages.userRemoved(positionals[0]!) + '\n');
  return 0;
}

async function list(rest: string[], stateDir: string, io: CliIo): Promise<number> {
  const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 0) throw new UsageError();
  const store = await UserStore.open(stateDir);
  io.stdout.write(table(await store.list()));
  return 0;
}

/** Runs `ldm-agent user ...`; `args` are the words after `user`. Resolves to the exit status. */
export async function runUser(args: string[], stateDir: string, io: CliIo = processIo()): Promise<number> {
  const [verb, ...rest] = args;
  try {
    switch (verb) {
      case 'add':
        return await add(rest, stateDir, io);
      case 'remove':
        return await remove(rest, stateDir, io);
      case 'list':
        return await list(rest, stateDir, io);
      case '-h':
      case '--help':
        io.stdout.write(authMessages.userUsage() + '\n');
        return 0;
      default:
        throw new UsageError();
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      const detail = err instanceof UsageError ? err.detail : (err as Error).message;
      if (detail) io.stderr.write(authMessages.userFailed(verb ?? '', detail) + '\n');
      io.stderr.write(authMessages.userUsage() + '\n');
      return 2;
    }
    if (err instanceof InputCancelled) {
      io.stderr.write(authMessages.userFailed(verb ?? '', authMessages.cancelled()) + '\n');
      return 1;
    }
    const text = err instanceof Error ? err.message : String(err);
    io.stderr.write(authMessages.userFailed(verb ?? '', text) + '\n');
    return 1;
  }
}
