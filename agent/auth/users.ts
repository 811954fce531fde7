/**
 * The user store: `STATE/users.json`, names with a role and an scrypt hash of
 * the password (never the password). The scrypt parameters are stored beside
 * each hash so that the defaults can be raised later without breaking logins.
 *
 * File shape (version 1):
 *   { "version": 1, "users": [ { "name": "alice", "role": "write",
 *       "password": { "scheme": "scrypt", "N": 16384, "r": 8, "p": 1, "keylen": 64,
 *                     "salt": "<base64>", "hash": "<base64>" } } ] }
 *
 * Writes are atomic and durable (agent/atomic-file.ts), mode 0600, the state
 * directory is created 0700 when missing. A damaged file raises
 * LDM_ERR_USERS_DAMAGED naming the file: it is never silently reset.
 *
 * Readers (`verify`, `role`, `list`) re-read the file when it changed on disk,
 * so `ldm-agent user add` takes effect in a running agent without a restart;
 * `watch` tells the daemon about a change as it happens, so that removals and
 * role changes reach sessions already open.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../atomic-file.ts';
import { ErrorCodes, LdmError, type ErrorCode } from '../errors.ts';
import { authMessages } from '../messages.ts';

export type Role = 'read' | 'write';
export const ROLES: readonly Role[] = ['read', 'write'];

export interface UserInfo {
  name: string;
  role: Role;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keylen: number;
}

export interface PasswordHash extends ScryptParams {
  scheme: 'scrypt';
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

export interface UserRecord extends UserInfo {
  password: PasswordHash;
}

/** Parameters for new hashes (about 50 ms and 16 MiB per hash). */
export const SCRYPT_DEFAULTS: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1, keylen: 64 });
const SALT_BYTES = 16;
/** Bounds for parameters read from the file, so a damaged file cannot make a login cost minutes or gigabytes. */
const LIMITS = { N: [2 ** 10, 2 ** 20], r: [1, 32], p: [1, 16], keylen: [16, 128] } as const;
const MAX_PASSWORD_BYTES = 1024;

export const USERS_FILE = 'users.json';
const USER_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export class AuthError extends LdmError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AuthError';
  }
}

export function isValidUserName(name: string): boolean {
  return USER_NAME_RE.test(name);
}

export function isRole(value: unknown): value is Role {
  return value === 'read' || value === 'write';
}

/**
 * The role check of every action (contract.md): `read` = solaris.ldoms.read
 * (list-* and event registration), `write` = solaris.ldoms.write (everything).
 */
export function roleAllows(role: Role, action: string): boolean {
  if (role === 'write') return true;
  if (role === 'read') return action.startsWith('list-') || /^(?:un)?reg-[a-z]+-events$/.test(action);
  return false;
}

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    // Node refuses anything above maxmem (default 32 MiB); scrypt needs 128 * N * r bytes.
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, params.keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = SCRYPT_DEFAULTS): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, params);
  return {
    scheme: 'scrypt',
    N: params.N,
    r: params.r,
    p: params.p,
    keylen: params.keylen,
    salt: salt.toString('base64'),
    hash: key.toString('base64'),
  };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await scrypt(password, Buffer.from(stored.salt, 'base64'), stored);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Hashed against when the user is unknown, so that the answer takes as long as
 * for a known user. Random bytes stand in for the hash: nothing can match them.
 */
const DUMMY_HASH: PasswordHash = {
  scheme: 'scrypt',
  ...SCRYPT_DEFAULTS,
  salt: randomBytes(SALT_BYTES).toString('base64'),
  hash: randomBytes(SCRYPT_DEFAULTS.keylen).toString('base64'),
};

function checkPassword(password: string): void {
  if (password.length === 0) throw new AuthError(ErrorCodes.PASSWORD, authMessages.emptyPassword());
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    throw new AuthError(ErrorCodes.PASSWORD, authMessages.passwordTooLong(MAX_PASSWORD_BYTES));
  if (/[\r\n\0]/.test(password)) throw new AuthError(ErrorCodes.PASSWORD, authMessages.passwordControl());
}

/** Parses and checks the file's content; every problem names the file. */
export function parseUsersFile(text: string, file: string): Map<string, UserRecord> {
  const damaged = (detail: string, cause?: unknown) =>
    new AuthError(ErrorCodes.USERS_DAMAGED, authMessages.usersDamaged(file, detail), { cause });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw damaged((err as Error).message, err);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw damaged(authMessages.shapeNotObject());
  const top = doc as Record<string, unknown>;
  if (top.version !== 1) throw damaged(authMessages.shapeVersion(JSON.stringify(top.version)));
  if (!Array.isArray(top.users)) throw damaged(authMessages.shapeUsers());
  const users = new Map<string, UserRecord>();
  top.users.forEach((entry: unknown, i: number) => {
    const where = `users[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw damaged(authMessages.shapeEntry(where));
    const u = entry as Record<string, unknown>;
    if (typeof u.name !== 'string' || !isValidUserName(u.name)) throw damaged(authMessages.shapeField(where, 'name'));
    if (users.has(u.name)) throw damaged(authMessages.shapeDuplicate(where, u.name));
    if (!isRole(u.role)) throw damaged(authMessages.shapeField(where, 'role'));
    const p = u.password as Record<string, unknown> | null | undefined;
    if (typeof p !== 'object' || p === null || p.scheme !== 'scrypt') throw damaged(authMessages.shapeField(where, 'password'));
    for (const key of ['N', 'r', 'p', 'keylen'] as const) {
      const v = p[key];
      const [lo, hi] = LIMITS[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
        throw damaged(authMessages.shapeField(where, `password.${key}`));
    }
    const N = p.N as number;
    if ((N & (N - 1)) !== 0) throw damaged(authMessages.shapeField(where, 'password.N'));
    const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
    if (typeof p.salt !== 'string' || !b64.test(p.salt)) throw damaged(authMessages.shapeField(where, 'password.salt'));
    if (typeof p.hash !== 'string' || !b64.test(p.hash) || Buffer.from(p.hash, 'base64').length !== p.keylen)
      throw damaged(authMessages.shapeField(where, 'password.hash'));
    users.set(u.name, {
      name: u.name,
      role: u.role,
      password: {
        scheme: 'scrypt',
        N,
        r: p.r as number,
        p: p.p as number,
        keylen: p.keylen as number,
        salt: p.salt,
        hash: p.hash,
      },
    });
  });
  return users;
}

interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

const sameIdentity = (a: FileIdentity | null, b: FileIdentity | null) =>
  a === b || (a !== null && b !== null && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs);

export class UserStore {
  readonly stateDir: string;
  readonly file: string;
  #users = new Map<string, UserRecord>();
  #seen: FileIdentity | null = null;
  /** Mutations run one after the other within this process. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.file = join(stateDir, USERS_FILE);
  }

  /** Opens the store of `stateDir`. A missing file is an empty store; nothing is created until a write. */
  static async open(stateDir: string): Promise<UserStore> {
    const store = new UserStore(stateDir);
    await store.#load();
    return store;
  }

  async #identity(): Promise<FileIdentity | null> {
    try {
      const s = await stat(this.file);
      return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new AuthError(ErrorCodes.FILE, authMessages.usersUnreadable(this.file, (err as Error).message), { cause: err });
    }
  }

  async #load(): Promise<void> {
    let text: string;
    const before = await this.#identity();
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#users = new Map();
        this.#seen = null;
        return;
      }
      throw new AuthError(ErrorCodes.FILE, authMessages.usersUnreadable(this.file, (err as Error).message), { cause: err });
    }
    this.#users = parseUsersFile(text, this.file);
    this.#seen = before;
  }

  /** Re-reads the file when another process (`ldm-agent user ...`) changed it. */
  async #refresh(): Promise<void> {
    const now = await this.#identity();
    const seen = this.#seen;
    if (sameIdentity(now, seen)) return;
    await this.#load();
  }

  /**
   * Calls `onChange` after the file changed on disk (another process ran
   * `ldm-agent user ...`, or an editor replaced the file by renaming a new one
   * over it), once the new content is read. It looks every `intervalMs`: one
   * stat, and a read only when the file's identity (inode, size, mtime)
   * changed. Polling rather than fs.watch: a watch on the directory misses
   * changes on some file systems and must be re-armed when the directory is
   * replaced, while a stat every quarter second is cheap and sees every
   * replacement. A version of the file that cannot be read or parsed is
   * reported once through `onError`, and the users read before stay in force.
   * Returns a function that stops watching.
   */
  watch(intervalMs: number, onChange: () => void, onError: (err: Error) => void): () => void {
    // Apart from #seen: a login may re-read the file first, and the change must still be told.
    let told = this.#seen;
    let refused: FileIdentity | null | undefined;
    let busy = false;
    const look = async () => {
      if (busy) return;
      busy = true;
      try {
        const now = await this.#identity();
        if (sameIdentity(now, told) || (refused !== undefined && sameIdentity(now, refused))) return;
        try {
          await this.#refresh();
        } catch (err) {
          refused = now;
          onError(err as Error);
          return;
        }
        refused = undefined;
        told = this.#seen;
        onChange();
      } catch (err) {
        onError(err as Error);
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void look(), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The role of `name` as last read from the file, without looking at the file again. */
  cachedRole(name: string): Role | null {
    return this.#users.get(name)?.role ?? null;
  }

  async #save(): Promise<void> {
    await ensureDir(this.stateDir, 0o700);
    const users = [...this.#users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const text = JSON.stringify({ version: 1, users }, null, 2) + '\n';
    await writeFileAtomic(this.file, text, { mode: 0o600 });
    this.#seen = await this.#identity();
  }

  #mutate<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => {
      await this.#load(); // read-modify-write against the newest file content
      return change();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  add(name: string, role: Role, password: string): Promise<void> {
    return this.#mutate(async () => {
      if (!isValidUserName(name)) throw new AuthError(ErrorCodes.USER_NAME, authMessages.badUserName(name));
      if (!isRole(role)) throw new AuthError(ErrorCodes.ROLE, authMessages.badRole(String(role)));
      checkPassword(password);
      if (this.#users.has(name)) throw new AuthError(ErrorCodes.USER_EXISTS, authMessages.userExists(name));
      const hash = await hashPassword(password);
      this.#users.set(name, { name, role, password: hash });
      await this.#save();
    });
  }

  remove(name: string): Promise<void> {
    return this.#mutate(async () => {
      if (!this.#users.has(name)) throw new AuthError(ErrorCodes.USER_UNKNOWN, authMessages.userUnknown(name));
      this.#users.delete(name);
      await this.#save();
    });
  }

  /** Names and roles, sorted by name; never the hashes. */
  async list(): Promise<UserInfo[]> {
    await this.#refresh();
    return [...this.#users.values()]
      .map(({ name, role }) => ({ name, role }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async role(name: string): Promise<Role | null> {
    await this.#refresh();
    return this.#users.get(name)?.role ?? null;
  }

  /**
   * The user and role when the password is right, else null. Unknown users
   * cost one scrypt against a dummy hash, like known ones.
   */
  async verify(name: string, password: string): Promise<UserInfo | null> {
    await this.#refresh();
    const user = this.#users.get(name);
    if (!user || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
      await verifyPassword(password.slice(0, MAX_PASSWORD_BYTES), DUMMY_HASH);
      return null;
    }
    return (await verifyPassword(password, user.password)) ? { name: user.name, role: user.role } : null;
  }
}
