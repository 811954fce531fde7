/**
 * Validation against schemas/ in-process, with libxml2 compiled to WebAssembly
 * (libxml2-wasm): libxml2's own messages and line numbers, no program to install.
 *
 * The wasm module is imported on first use only, so the daemon and `--help` never
 * load it; each root's schema is compiled once, on first use, and kept. Includes and
 * imports are read through an input provider confined to schemas/: libxml2 reads no
 * other file, whatever a schema or a validated document names.
 */
import { closeSync, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { XmlDocument as XmlDocumentType, XmlInputProvider, XsdValidator as XsdValidatorType } from 'libxml2-wasm';
import { ErrorCodes, LdmError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import type { RootName } from './document.ts';
import type { Problem } from './validate.ts';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

export const SCHEMA_FILE: Record<RootName, string> = {
  LDM_interface: resolve(SCHEMA_DIR, 'ldm-interface.xsd'),
  LDM_event: resolve(SCHEMA_DIR, 'ldm-event.xsd'),
};

type Lib = typeof import('libxml2-wasm');

// ParseOption values (libxml2's xmlParserOption), spelled here so that this module needs no
// runtime import of the package: no network, no external entities or DTDs, lines past 65535.
const XML_PARSE_NONET = 2048;
const XML_PARSE_NO_XXE = 8388608;
const XML_PARSE_BIG_LINES = 4194304;
const PARSE_OPTIONS = XML_PARSE_NONET | XML_PARSE_NO_XXE | XML_PARSE_BIG_LINES;

/** libxml2's xmlErrorLevel: 1 warning, 2 error, 3 fatal. */
const XML_ERR_ERROR = 2;

/** Is `file` inside `dir` (both real paths)? */
function inside(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * An input provider that serves the files under `dir` and refuses everything else
 * (other paths, `..` escapes, symbolic links leading out, URLs of other schemes). It
 * claims every name libxml2 asks about, so that a refused name never falls through
 * to another loader.
 */
export function confinedInputProvider(dir: string): XmlInputProvider {
  const root = realpathSync(dir);
  const open = new Map<number, { data: Buffer; at: number }>();
  let nextFd = 1; // 0 means "could not open" to libxml2
  return {
    match: () => true,
    open(name: string): number | undefined {
      let path: string;
      try {
        path = name.startsWith('file:') ? fileURLToPath(name) : name;
        if (!isAbsolute(path)) return undefined; // relative names and other URL schemes
        path = realpathSync(path);
      } catch {
        return undefined;
      }
      if (!inside(root, path)) return undefined;
      let data: Buffer;
      try {
        const fd = openSync(path, 'r');
        try {
          if (!fstatSync(fd).isFile()) return undefined;
          data = readFileSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch {
        return undefined;
      }
      const fd = nextFd++;
      open.set(fd, { data, at: 0 });
      return fd;
    },
    read(fd: number, buf: Uint8Array): number {
      const file = open.get(fd);
      if (!file) return -1;
      const n = Math.min(buf.byteLength, file.data.length - file.at);
      buf.set(file.data.subarray(file.at, file.at + n));
      file.at += n;
      return n;
    },
    close: (fd: number) => open.delete(fd),
  };
}

/** libxml2's diagnostics as problems: errors only (warnings when nothing else explains a failure). */
function problemsOf(details: readonly { message: string; level: number; line: number }[]): Problem[] {
  const errors = details.filter((d) => d.level >= XML_ERR_ERROR);
  return (errors.length > 0 ? errors : details).map((d) => ({ line: d.line, reason: d.message.trim() }));
}

interface Compiled {
  schema: XmlDocumentType;
  validator: XsdValidatorType;
}

/**
 * Compiled schemas and validation. Made by loadSchemas(), which also registers the
 * confined reader; a set made directly (tests, bench) relies on that having happened.
 */
export class Schemas {
  readonly #lib: Lib;
  readonly #files: Record<RootName, string>;
  readonly #compiled = new Map<RootName, Compiled>();

  constructor(lib: Lib, files: Record<RootName, string> = SCHEMA_FILE) {
    this.#lib = lib;
    this.#files = files;
  }

  /** Compiles the schema of `root` unless it already is (first use of a root does it anyway). */
  compile(root: RootName): void {
    this.#validator(root);
  }

  #validator(root: RootName): XsdValidatorType {
    const done = this.#compiled.get(root);
    if (done) return done.validator;
    const { XmlDocument, XsdValidator } = this.#lib;
    const file = this.#files[root];
    let schema: XmlDocumentType;
    try {
      // Parsed with its own path as URL, so libxml2 resolves includes and imports relative to it.
      schema = XmlDocument.fromBuffer(readFileSync(file), { url: file, option: PARSE_OPTIONS });
    } catch (err) {
      throw new LdmError(ErrorCodes.FILE, xmlMessages.schemaUnusable(file, this.#describe(err)), { cause: err });
    }
    try {
      const validator = XsdValidator.fromDoc(schema);
      // The schema document stays alive as long as its validator: the compiled schema may point into it.
      this.#compiled.set(root, { schema, validator });
      return validator;
    } catch (err) {
      schema.dispose();
      throw new LdmError(ErrorCodes.FILE, xmlMessages.schemaUnusable(file, this.#describe(err)), { cause: err });
    }
  }

  /** An error of libxml2 on one line: its diagnostics joined. */
  #describe(err: unknown): string {
    if (err instanceof this.#lib.XmlLibError && err.details.length > 0) return err.details.map((d) => d.message.trim()).join('; ');
    return (err as Error).message.trim();
  }

  /**
   * Validates a document (its text, or its bytes so that an encoding declaration is
   * honoured) against the schema of `root`. Problems are libxml2's: not well-formed or
   * namespace errors first found while parsing, else every validity error, each with its line.
   */
  validate(root: RootName, source: string | Uint8Array): Problem[] {
    const validator = this.#validator(root);
    const { XmlDocument, XmlLibError } = this.#lib;
    let doc: XmlDocumentType;
    try {
      doc = typeof source === 'string' ? XmlDocument.fromString(source, { option: PARSE_OPTIONS }) : XmlDocument.fromBuffer(source, { option: PARSE_OPTIONS });
    } catch (err) {
      if (err instanceof XmlLibError && err.details.length > 0) return problemsOf(err.details);
      return [{ line: 1, reason: (err as Error).message.trim() }];
    }
    try {
      validator.validate(doc);
      return [];
    } catch (err) {
      if (err instanceof XmlLibError && err.details.length > 0) return problemsOf(err.details);
      return [{ line: 1, reason: (err as Error).message.trim() }];
    } finally {
      doc.dispose();
    }
  }

  /** Frees the compiled schemas; a later validate compiles again. */
  close(): void {
    for (const { validator, schema } of this.#compiled.values()) {
      validator.dispose();
      schema.dispose();
    }
    this.#compiled.clear();
  }
}

let loading: Promise<Schemas> | undefined;

/** The process's schemas: loads libxml2-wasm and registers the confined input provider, once. */
export function loadSchemas(): Promise<Schemas> {
  loading ??= (async () => {
    const lib = await import('libxml2-wasm');
    if (!lib.xmlRegisterInputProvider(confinedInputProvider(SCHEMA_DIR))) {
      throw new LdmError(ErrorCodes.FILE, xmlMessages.schemaUnusable(SCHEMA_DIR, xmlMessages.providerRefused()));
    }
    return new Schemas(lib);
  })().catch((err: unknown) => {
    loading = undefined; // not cached: a later call tries again
    throw err;
  });
  return loading;
}
