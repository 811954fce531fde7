import t from 'tap';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { roleAllows, UserStore, type Role } from '../agent/auth/users.ts';
import { runUser } from '../agent/cli/user.ts';
import type { CliIo } from '../agent/cli/io.ts';
import { ErrorCodes } from '../agent/errors.ts';

function fakeIo(input = ''): CliIo & { out: () => string; err: () => string } {
  const stdin = new PassThrough();
  stdin.end(input);
  let out = '';
  let err = '';
  return {
    stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    out: () => out,
    err: () => err,
  };
}

t.test('the file holds an scrypt hash, not the password, with mode 0600 in a 0700 directory', async (t) => {
  const state = join(t.testdir(), 'var');
  const store = await UserStore.open(state);
  await store.add('alice', 'write', 'correct horse battery staple');
  const text = await readFile(join(state, 'users.json'), 'utf8');
  t.notMatch(text, 'correct horse');
  const doc = JSON.parse(text);
  t.match(doc, { version: 1, users: [{ name: 'alice', role: 'write', password: { scheme: 'scrypt', N: 16384, r: 8, p: 1, keylen: 64 } }] });
  t.equal(Buffer.from(doc.users[0].password.salt, 'base64').length, 16);
  t.equal((await stat(join(state, 'users.json'))).mode & 0o777, 0o600);
  t.equal((await stat(state)).mode & 0o777, 0o700);
});

t.test('verify: right password, wrong password, unknown user', async (t) => {
  const state = t.testdir();
  const store = await UserStore.open(state);
  await store.add('bob', 'read', 's3cret');
  t.same(await store.verify('bob', 's3cret'), { name: 'bob', role: 'read' });
  t.equal(await store.verify('bob', 's3cret '), null);
  t.equal(await store.verify('bob', ''), null);
  t.equal(await store.verify('nobody', 's3cret'), null);
  t.equal(await store.role('bob'), 'read');
  t.equal(await store.role('nobody'), null);
  // Another process (a fresh store) sees the same user.
  const again = await UserStore.open(state);
  t.same(await again.verify('bob', 's3cret'), { name: 'bob', role: 'read' });
});

t.test('unknown users cost about as much as known ones', async (t) => {
  const store = await UserStore.open(t.testdir());
  await store.add('carol', 'read', 'pw');
  const time = async (name: string) => {
    const start = performance.now();
    await store.verify(name, 'wrong');
    return performance.now() - start;
  };
  await time('carol');
  const known = await time('carol');
  const unknown = await time('nobody');
  t.ok(unknown > known / 4, `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
});

t.test('duplicates and invalid names are refused; remove; list', async (t) => {
  const store = await UserStore.open(t.testdir());
  await store.add('dave', 'write', 'pw1');
  await t.rejects(store.add('dave', 'read', 'pw2'), { code: ErrorCodes.USER_EXISTS });
  for (const bad of ['', 'a b', 'x/y', 'é', 'a'.repeat(65), '../etc']) {
    await t.rejects(store.add(bad, 'read', 'pw'), { code: ErrorCodes.USER_NAME }, JSON.stringify(bad));
  }
  await t.rejects(store.add('erin', 'admin' as Role, 'pw'), { code: ErrorCodes.ROLE });
  await t.rejects(store.add('erin', 'read', ''), { code: ErrorCodes.PASSWORD });
  await store.add('a.b_c-9', 'read', 'pw');
  t.same(await store.list(), [
    { name: 'a.b_c-9', role: 'read' },
    { name: 'dave', role: 'write' },
  ]);
  await store.remove('dave');
  await t.rejects(store.remove('dave'), { code: ErrorCodes.USER_UNKNOWN });
  t.same(await store.list(), [{ name: 'a.b_c-9', role: 'read' }]);
  t.equal(await store.verify('dave', 'pw1'), null);
});

t.test('a running store sees users added by another process', async (t) => {
  const state = t.testdir();
  const daemon = await UserStore.open(state);
  t.equal(await daemon.verify('frank', 'pw'), null);
  await (await UserStore.open(state)).add('frank', 'write', 'pw');
  t.same(await daemon.verify('frank', 'pw'), { name: 'frank', role: 'write' });
});

t.test('a damaged users.json is an error naming the file, never reset', async (t) => {
  const cases: Record<string, string> = {
    'bad JSON': '{"version": 1, "users": [',
    'wrong top level': '[]',
    'wrong version': '{"version": 7, "users": []}',
    'users not an array': '{"version": 1, "users": {}}',
    'bad role': '{"version": 1, "users": [{"name": "x", "role": "root", "password": {}}]}',
    'no hash': '{"version": 1, "users": [{"name": "x", "role": "read", "password": {"scheme": "scrypt", "N": 16384, "r": 8, "p": 1, "keylen": 64, "salt": "AAAA"}}]}',
    'absurd cost': '{"version": 1, "users": [{"name": "x", "role": "read", "password": {"scheme": "scrypt", "N": 1073741824, "r": 8, "p": 1, "keylen": 64, "salt": "AAAA", "hash": "AAAA"}}]}',
  };
  for (const [label, content] of Object.entries(cases)) {
    const state = t.testdir();
    const file = join(state, 'users.json');
    await writeFile(file, content, { mode: 0o600 });
    const err = await UserStore.open(state).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    t.equal(err?.code, ErrorCodes.USERS_DAMAGED, label);
    t.match(err?.message, file, `${label}: the message names the file`);
    t.equal(await readFile(file, 'utf8'), content, `${label}: the file is left alone`);
  }
});

t.test('roleAllows', async (t) => {
  const table: [string, boolean, boolean][] = [
    // action, read, write
    ['list-domain', true, true],
    ['list-bindings', true, true],
    ['list-constraints', true, true],
    ['reg-domain-events', true, true],
    ['unreg-all-events', true, true],
    ['reg-progress-events', true, true],
    ['add-domain', false, true],
    ['start-domain', false, true],
    ['set-vcpu', false, true],
    ['migrate-domain', false, true],
    ['cancel-operation', false, true],
    ['remove-spconfig', false, true],
  ];
  for (const [action, read, write] of table) {
    t.equal(roleAllows('read', action), read, `read ${action}`);
    t.equal(roleAllows('write', action), write, `write ${action}`);
  }
});

t.test('runUser: --password-file readable by others is refused, 0600 accepted', async (t) => {
  const dir = t.testdir();
  const state = join(dir, 'var');
  const pwfile = join(dir, 'pw');
  await writeFile(pwfile, 'from-file\nsecond line ignored\n');
  await chmod(pwfile, 0o644);

  let io = fakeIo();
  t.equal(await runUser(['add', 'gina', '--role', 'write', '--password-file', pwfile], state, io), 1);
  t.match(io.err(), pwfile);
  t.match(io.err(), /group or others/);
  t.notMatch(io.err() + io.out(), 'from-file');

  await chmod(pwfile, 0o600);
  io = fakeIo();
  t.equal(await runUser(['add', 'gina', '--role', 'write', '--password-file', pwfile], state, io), 0, io.err());
  t.notMatch(io.err() + io.out(), 'from-file');
  const store = await UserStore.open(state);
  t.same(await store.verify('gina', 'from-file'), { name: 'gina', role: 'write' });

  io = fakeIo();
  t.equal(await runUser(['add', 'hank', '--role', 'read', '-p', join(dir, 'missing')], state, io), 1);
  t.match(io.err(), /does not exist/);

  io = fakeIo();
  t.equal(await runUser(['add', 'gina', '--role', 'read', '--password-file', pwfile], state, io), 1);
  t.match(io.err(), /already exists/);
});

t.test('runUser: password from a non-terminal stdin, remove, list, usage', async (t) => {
  const state = t.testdir();
  let io = fakeIo('piped-pw\nnext\n');
  t.equal(await runUser(['add', 'ivan', '--role', 'read'], state, io), 0, io.err());
  t.notMatch(io.out() + io.err(), 'piped-pw');
  t.same(await (await UserStore.open(state)).verify('ivan', 'piped-pw'), { name: 'ivan', role: 'read' });

  io = fakeIo('');
  t.equal(await runUser(['add', 'judy', '--role', 'read'], state, io), 1, 'no password on stdin');

  io = fakeIo('pw\n');
  t.equal(await runUser(['add', 'administrator', '--role', 'write'], state, io), 0);

  io = fakeIo();
  t.equal(await runUser(['list'], state, io), 0);
  t.equal(io.out(), ['NAME           ROLE', 'administrator  write', 'ivan           read', ''].join('\n'));
  t.notMatch(io.out(), /scrypt|pw/);

  io = fakeIo();
  t.equal(await runUser(['remove', 'ivan'], state, io), 0);
  io = fakeIo();
  t.equal(await runUser(['remove', 'ivan'], state, io), 1);
  t.match(io.err(), /no user "ivan"/);

  for (const args of [[], ['frob'], ['add'], ['add', 'x'], ['add', 'x', '--role', 'admin'], ['add', 'x', '--role'], ['list', 'extra'], ['remove'], ['add', 'x', '--role', 'read', '--bogus']]) {
    io = fakeIo('pw\n');
    t.equal(await runUser(args, state, io), 2, args.join(' '));
    t.match(io.err(), /usage: ldm-agent user add/);
  }

  io = fakeIo('pw\n');
  t.equal(await runUser(['add', 'bad name', '--role', 'read'], state, io), 1);
  t.match(io.err(), /invalid user name/);
});

t.test('runUser on an empty state dir lists nothing and creates nothing', async (t) => {
  const state = join(t.testdir(), 'not-yet');
  const io = fakeIo();
  t.equal(await runUser(['list'], state, io), 0);
  t.equal(io.out(), 'NAME  ROLE\n');
  await t.rejects(stat(state), { code: 'ENOENT' });
});

/** A terminal: records raw mode, and "types" the next answer whenever a prompt is written. */
function fakeTty(answers: (string | string[])[]) {
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    raw: [] as boolean[],
    setRawMode(mode: boolean) {
      stdin.raw.push(mode);
      return stdin;
    },
  });
  let out = '';
  let err = '';
  const io: CliIo = {
    stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: {
      write: (s: string) => {
        err += s;
        if (/Password: $/.test(s)) {
          const answer = answers.shift();
          // An answer typed in several chunks, as keystrokes arrive.
          for (const [i, chunk] of [answer ?? []].flat().entries()) setTimeout(() => stdin.write(chunk), i);
        }
      },
    },
  };
  return { io, stdin, out: () => out, err: () => err };
}

t.test('runUser on a terminal: two prompts without echo, raw mode on and off', async (t) => {
  const state = t.testdir();
  let tty = fakeTty(['secrex\x7ft\r', ['sec', 'ret\r']]);
  t.equal(await runUser(['add', 'kim', '--role', 'write'], state, tty.io), 0, tty.err());
  t.equal(tty.err(), 'Password: \nRe-enter Password: \n', 'prompts only, nothing echoed');
  t.same(tty.stdin.raw, [true, false, true, false]);
  t.same(await (await UserStore.open(state)).verify('kim', 'secret'), { name: 'kim', role: 'write' });

  tty = fakeTty(['one\r', 'two\r']);
  t.equal(await runUser(['add', 'lee', '--role', 'read'], state, tty.io), 1);
  t.match(tty.err(), /do not match/);
  t.notMatch(tty.err(), /one|two/);

  tty = fakeTty(['abc\x03']);
  t.equal(await runUser(['add', 'lee', '--role', 'read'], state, tty.io), 1);
  t.match(tty.err(), /cancelled/);
  t.same(tty.stdin.raw, [true, false], 'raw mode restored after Ctrl-C');
  t.equal(await (await UserStore.open(state)).role('lee'), null);
});
