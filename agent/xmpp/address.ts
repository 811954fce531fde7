/**
 * An agent's XML address as people write it: `host`, `host:port`, `[v6]:port` or a bare
 * IPv6 address (no port can follow one unbracketed); the port defaults to 6482. One
 * reading for `ldm -H` and for the target of a migration. No imports: the `ldm` bundle
 * loads it at every start.
 */
export const DEFAULT_XML_PORT = 6482;

export interface AgentAddress {
  host: string;
  port: number;
  /** As written (trimmed): what messages and records show. */
  text: string;
}

/** The address, or undefined when the text is none. */
export function parseAgentAddress(text: string): AgentAddress | undefined {
  const t = text.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+|[0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(t);
  if (!m) return undefined;
  const bare = m[2];
  if (bare !== undefined && bare.includes(':')) return m[3] === undefined ? { host: bare, port: DEFAULT_XML_PORT, text: t } : undefined;
  const port = m[3] === undefined ? DEFAULT_XML_PORT : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? bare)!, port, text: t };
}
