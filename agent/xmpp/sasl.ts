/**
 * SASL mechanisms of the agent: PLAIN (RFC 4616), the one ldmd documents,
 * and EXTERNAL (RFC 4422 appendix A) for clients that presented a trusted
 * certificate over TLS. Pure functions: the connection does the I/O.
 */

export interface PlainCredentials {
  authzid: string;
  user: string;
  password: string;
}

/** Decode the base64 PLAIN message `[authzid] NUL authcid NUL passwd`; null when malformed. */
export function decodePlain(base64: string): PlainCredentials | null {
  const text = base64.trim();
  if (text === '' || text === '=' || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const parts = Buffer.from(text, 'base64').toString('utf8').split('\u0000');
  if (parts.length !== 3) return null;
  const [authzid, user, password] = parts as [string, string, string];
  if (user === '' || password === '') return null;
  return { authzid, user, password };
}

export function encodePlain(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\u0000${user}\u0000${password}`, 'utf8').toString('base64');
}

/**
 * The identity an EXTERNAL exchange asks for: the authorization identity the
 * client sent (empty or `=` means "the one my certificate says"); null when malformed.
 */
export function decodeExternal(base64: string): string | null {
  const text = base64.trim();
  if (text === '' || text === '=') return '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64').toString('utf8');
}
