/**
 * The streams a CLI subcommand talks through, handed in so tests can use
 * PassThrough streams instead of the process's.
 */
import { StringDecoder } from 'node:string_decoder';

export interface CliInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

export interface CliOutput {
  write(text: string): unknown;
}

export interface CliIo {
  stdin: CliInput;
  stdout: CliOutput;
  stderr: CliOutput;
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

/** Thrown by the readers when the user gives up (Ctrl-C, end of input). */
export class InputCancelled extends Error {
  constructor(readonly reason: 'interrupt' | 'eof') {
    super(reason);
    this.name = 'InputCancelled';
  }
}

/** Bad usage: an optional detail, then the usage text; exit status 2. */
export class UsageError extends Error {
  constructor(readonly detail?: string) {
    super(detail ?? 'usage');
    this.name = 'UsageError';
  }
}

/** node:util parseArgs throws these for unknown options and missing option values. */
export function isParseArgsError(err: unknown): err is Error {
  return err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_');
}

const MAX_LINE = 4096;

/**
 * Reads one line (without its end of line) from a non-TTY input, then stops
 * reading. Null at end of input with nothing read.
 */
export function readLine(input: CliInput): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let buf = '';
    const finish = (line: string | null, err?: unknown) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if (err) reject(err);
      else resolve(line === null ? null : line.replace(/\r$/, ''));
    };
    const onData = (chunk: Buffer | string) => {
      buf += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.slice(0, nl));
      else if (buf.length > MAX_LINE) finish(buf.slice(0, MAX_LINE));
    };
    const onEnd = () => {
      buf += decoder.end();
      finish(buf.length > 0 ? buf : null);
    };
    const onError = (err: unknown) => finish(null, err);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.resume();
  });
}

/**
 * Prompts on `prompt` and reads a line from a TTY in raw mode, so nothing
 * typed is echoed. Backspace and Ctrl-U edit; Ctrl-C cancels; Ctrl-D on an
 * empty line cancels.
 */
export function readHidden(input: CliInput, prompt: CliOutput, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let chars: string[] = [];
    prompt.write(text);
    input.setRawMode?.(true);
    const finish = (err?: unknown) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.setRawMode?.(false);
      input.pause();
      prompt.write('\n');
      if (err) reject(err);
      else resolve(chars.join(''));
    };
    const onData = (chunk: Buffer | string) => {
      const s = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      if (s.startsWith('\x1b')) return; // arrow keys and other escape sequences
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\x03') return finish(new InputCancelled('interrupt'));
        if (ch === '\x04') return chars.length === 0 ? finish(new InputCancelled('eof')) : finish();
        if (ch === '\x7f' || ch === '\b') chars.pop();
        else if (ch === '\x15') chars = [];
        else if (ch >= ' ') chars.push(ch);
        if (chars.length > MAX_LINE) return finish();
      }
    };
    const onEnd = () => finish(new InputCancelled('eof'));
    const onError = (err: unknown) => finish(err);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.resume();
  });
}
