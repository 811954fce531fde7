/**
 * A small structured logger to stderr. Callers pass facts, never secrets:
 * no password, key or SASL payload is ever a field.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function format(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join('');
}

export function createLogger(
  level: LogLevel = (process.env.LDM_LOG_LEVEL as LogLevel | undefined) ?? 'info',
  component = 'ldm-agent',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const at = (l: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[l] >= min) write(`${new Date().toISOString()} ${l} ${component}: ${msg}${format(fields)}\n`);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (c) => createLogger(level, `${component}/${c}`, write),
  };
}

/** A logger that drops everything (tests of one module). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
