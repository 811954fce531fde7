/**
 * xml-examples/ against schemas/ and against the codec:
 * (a) every example is valid against schemas/ (chosen by root element; in-process,
 *     agent/xml/schema.ts, as `ldm-agent validate` does);
 * (b) every example survives decode -> encode -> decode unchanged, and every
 *     request decodes without a problem;
 * (c) every file of responses/ and events/ is produced: by the agent itself
 *     (test/examples-agent.test.ts compares those with what a running agent
 *     sends; test/helpers/examples.ts lists them) or, for what the agent cannot
 *     produce yet, by xml-examples/generate.ts (checked here to equal its output);
 * plus coverage: a request for every action, the promised responses and events.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { LDM_ACTIONS } from '../agent/xml/actions.ts';
import { decodeText, type DocumentKind } from '../agent/xml/decode.ts';
import type { Item, LdmDocument, ResponseStatus, RootName } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { loadSchemas, SCHEMA_FILE } from '../agent/xml/schema.ts';
import { parseXml } from '../agent/xml/tree.ts';
import { buildExamples, EXAMPLES_DIR, render } from '../xml-examples/generate.ts';
import { AGENT_ACTIONS, AGENT_EXAMPLES, PRODUCED_DIRS, UPDATE_COMMAND } from './helpers/examples.ts';
import { showProblems } from './helpers/schema.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const schemas = await loadSchemas();
const isRoot = (name: string): name is RootName => Object.hasOwn(SCHEMA_FILE, name);

function xmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? xmlFiles(join(dir, e.name)) : e.name.endsWith('.xml') ? [join(dir, e.name)] : []))
    .sort();
}

/** Path under xml-examples/, with forward slashes. */
const rel = (file: string) => relative(EXAMPLES_DIR, file).split(sep).join('/');

const KIND_OF_DIR: Record<string, DocumentKind> = { requests: 'request', responses: 'response', events: 'event' };
function kindOf(file: string): DocumentKind {
  const kind = KIND_OF_DIR[rel(file).split('/')[0]!];
  if (!kind) throw new Error(`${rel(file)} is in no known example folder`);
  return kind;
}

const files = xmlFiles(EXAMPLES_DIR);
const texts = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));

/**
 * A typed document as plain data: Maps become entry lists (order kept), `line`
 * fields dropped. With `wire`, the decoder's `problem` notes are dropped too:
 * they reach the wire only as the response messages they become.
 */
function plain(doc: LdmDocument, wire = false): unknown {
  const problem = (p: string | undefined) => (wire ? undefined : p);
  const status = (r: ResponseStatus | undefined) => r && { status: r.status, messages: [...r.messages] };
  const item = (it: Item): unknown => ({
    type: it.type,
    uuid: it.uuid,
    rasd: [...it.rasd],
    props: [...it.props],
    bindings: it.bindings.map(item),
  });
  return {
    root: doc.root,
    version: doc.version,
    response: status(doc.response),
    commands: doc.commands.map((c) => ({
      action: c.action,
      options: [...c.options],
      arguments: [...c.arguments],
      problem: problem(c.problem),
      response: status(c.response),
      data: c.data.map((d) => ({
        version: d.version,
        problem: problem(d.problem),
        response: status(d.response),
        warning: status(d.warning),
        envelope: d.envelope && {
          contents: d.envelope.contents.map((c) => ({
            id: c.id,
            type: c.type,
            sections: c.sections.map((s) => ({ type: s.type, items: s.items.map(item) })),
          })),
          sections: d.envelope.sections.map((s) => ({ type: s.type, items: s.items.map(item) })),
        },
      })),
    })),
  };
}

t.test('the example folders are populated', async (t) => {
  for (const dir of ['requests', 'responses', 'events']) {
    t.ok(files.some((f) => rel(f).startsWith(`${dir}/`)), `${dir}/ holds examples`);
  }
});

t.test('(a) every example is valid against its schema', async (t) => {
  for (const file of files) {
    t.test(rel(file), async (t) => {
      const root = parseXml(texts.get(file)!).name;
      if (!isRoot(root)) return void t.fail(`root <${root}> has no schema`);
      // The file's bytes, as `ldm-agent validate` reads them.
      const problems = schemas.validate(root, readFileSync(file));
      t.same(problems, [], `valid against ${relative(ROOT, SCHEMA_FILE[root])}\n${showProblems(problems)}`);
    });
  }
});

t.test('(b) every example round-trips through the codec', async (t) => {
  for (const file of files) {
    t.test(rel(file), async (t) => {
      const kind = kindOf(file);
      const first = decodeText(texts.get(file)!, kind);
      t.ok(first.commands.length > 0 || first.response, 'decodes to something');
      if (kind === 'response') t.ok(first.response, 'a response has an overall response');
      for (const cmd of first.commands) {
        t.equal(cmd.problem, undefined, `cmd line ${cmd.line} decodes without a problem`);
        for (const d of cmd.data) t.equal(d.problem, undefined, `data line ${d.line} decodes without a problem`);
      }
      const encoded = encodeDocument(first);
      const second = decodeText(encoded, kind);
      t.strictSame(plain(second), plain(first), 'decode(encode(decode(file))) equals decode(file)');
      t.equal(encodeDocument(second), encoded, 'encoding is stable');
    });
  }
});

t.test('(b) requests name the action of their file', async (t) => {
  for (const action of LDM_ACTIONS) {
    const file = join(EXAMPLES_DIR, 'requests', `${action}.xml`);
    const text = texts.get(file);
    if (text === undefined) {
      t.fail(`requests/${action}.xml exists`);
      continue;
    }
    const doc = decodeText(text, 'request');
    t.same(doc.commands.map((c) => c.action), [action], `requests/${action}.xml is one ${action} command`);
  }
  const extra = files
    .filter((f) => rel(f).startsWith('requests/') && !rel(f).includes('/', 'requests/'.length))
    .map((f) => rel(f).slice('requests/'.length, -'.xml'.length))
    .filter((n) => !(LDM_ACTIONS as readonly string[]).includes(n));
  t.same(extra.sort(), ['libldom-reg-domain-events', 'several-commands'], 'other top-level requests are the documented ones');
});

t.test('(b) the libldom registration is byte for byte what libldom sends', async (t) => {
  const text = texts.get(join(EXAMPLES_DIR, 'requests', 'libldom-reg-domain-events.xml'));
  t.equal(
    text,
    '<LDM_interface version="1.1"><cmd><action>reg-domain-events</action><data version="3.0"> </data></cmd></LDM_interface>',
  );
});

t.test('(c) generate.ts output equals its files', async (t) => {
  const examples = buildExamples();
  const generated = new Set(examples.map((e) => e.path));
  t.equal(generated.size, examples.length, 'no path is generated twice');
  for (const ex of examples) {
    t.test(ex.path, async (t) => {
      const onDisk = texts.get(join(EXAMPLES_DIR, ex.path));
      if (onDisk === undefined) return void t.fail('is committed (run npx tsx xml-examples/generate.ts)');
      t.equal(onDisk, render(ex.doc), "equals the generator's output");
      t.strictSame(plain(decodeText(onDisk, ex.kind), true), plain(ex.doc, true), 'decodes to the generated document');
    });
  }
});

t.test('(c) every file of responses/ and events/ comes from the agent or from generate.ts', async (t) => {
  const generated = new Set(buildExamples().map((e) => e.path));
  const fromAgent = new Set(AGENT_EXAMPLES);
  t.equal(fromAgent.size, AGENT_EXAMPLES.length, 'the agent test lists no path twice');
  t.same([...generated].filter((p) => fromAgent.has(p)), [], 'no file is produced by both');
  for (const path of AGENT_EXAMPLES) {
    t.ok(texts.has(join(EXAMPLES_DIR, path)), `${path} is committed (run ${UPDATE_COMMAND})`);
  }
  for (const file of files) {
    const name = rel(file);
    if (PRODUCED_DIRS.some((d) => name.startsWith(`${d}/`))) {
      t.ok(generated.has(name) || fromAgent.has(name), `${name} comes from the agent test or from generate.ts (no stale file)`);
    }
  }
});

t.test('(c) the promised responses and events exist', async (t) => {
  const produced = new Set([...AGENT_EXAMPLES, ...buildExamples().map((e) => e.path)]);
  // Every implemented action by the agent; migrate-domain by generate.ts until the agent implements it.
  for (const action of [...AGENT_ACTIONS, 'migrate-domain']) {
    for (const outcome of ['success', 'failure'] as const) {
      const path = `responses/${action}.${outcome}.xml`;
      const file = join(EXAMPLES_DIR, path);
      t.ok(produced.has(path), `${path} is produced`);
      const text = texts.get(file);
      if (text === undefined) continue;
      const doc = decodeText(text, 'response');
      t.equal(doc.response?.status, outcome, `${path}: overall ${outcome}`);
      t.same(doc.commands.map((c) => c.action), [action], `${path}: answers ${action}`);
      if (outcome === 'failure') {
        const messages = doc.commands.flatMap((c) => [...(c.response?.messages ?? []), ...c.data.flatMap((d) => d.response?.messages ?? [])]);
        t.ok(messages.length > 0, `${path}: says why`);
      }
    }
  }
  for (const path of ['responses/several-commands.xml', 'responses/no-cmd.xml', 'responses/unknown-action.xml']) {
    t.ok(produced.has(path), `${path} is produced`);
  }
  for (const name of ['start-domain', 'add-vcpu', 'add-crypto', 'add-spconfig', 'migration-progress', 'migration-done']) {
    t.ok(produced.has(`events/${name}.xml`), `events/${name}.xml is produced`);
  }
});

t.test('(c) the special responses say what they should', async (t) => {
  const read = (path: string) => decodeText(texts.get(join(EXAMPLES_DIR, path)) ?? '', 'response');
  const several = read('responses/several-commands.xml');
  t.same(several.commands.map((c) => c.response?.status), ['success', 'success', 'failure'], 'several-commands: the third fails');
  t.equal(several.response?.status, 'failure', 'several-commands: overall failure');

  const broken = read('responses/no-cmd.xml');
  t.equal(broken.commands.length, 0, 'no-cmd: no cmd in the response either');
  t.same(broken.response?.messages, ['<LDM_interface> contains no <cmd> element'], 'no-cmd: the overall response says why');

  const unknown = read('responses/unknown-action.xml');
  t.same(unknown.commands[0]?.response?.messages, ['Unknown action: ls-dom'], 'unknown-action: command-level reason');

  const migrate = texts.get(join(EXAMPLES_DIR, 'responses', 'migrate-domain.success.xml')) ?? '';
  t.notMatch(migrate, /key="(username|password)"/, 'a migrate-domain response does not echo the target login');

  const progress = decodeText(texts.get(join(EXAMPLES_DIR, 'events', 'migration-progress.xml')) ?? '', 'event');
  const info = progress.commands[0]?.data[0]?.envelope?.contents[0]?.sections[0]?.items[0];
  t.same(
    info && [info.type, info.props.get('progress'), info.props.get('status')],
    ['ldom_info', '45%', 'ongoing'],
    'migration-progress: ldom_info with progress and status',
  );
});
