/** Bounds on every XML document the agent reads (protocol.md: every parser is bounded). */
export interface XmlLimits {
  /** Largest document accepted, in bytes of UTF-8. */
  maxBytes: number;
  /** Deepest element nesting accepted (the root is depth 1). */
  maxDepth: number;
  /** Most elements accepted in one document. */
  maxElements: number;
}

export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxBytes: 4 * 1024 * 1024,
  maxDepth: 64,
  // A 100-domain list-bindings is about 20,000 elements; leave room, bound the worst case.
  maxElements: 200_000,
});

/**
 * Bounds before the peer has logged in. Until SASL succeeds a stream only
 * carries the handshake (the header, <starttls/>, <auth/>, <response/>,
 * <abort/>): each element is small and there are few of them, so nothing an
 * unauthenticated peer sends costs the agent more than a few KB of parsing.
 */
export interface PreAuthLimits extends XmlLimits {
  /** Top-level elements accepted on one connection before login. */
  maxStanzas: number;
}

export const PRE_AUTH_LIMITS: Readonly<PreAuthLimits> = Object.freeze({
  // A PLAIN <auth/> carries base64 of user and password: 4 KiB leaves room for a 3 KB password.
  maxBytes: 4096,
  maxDepth: 4,
  maxElements: 8,
  // <starttls/>, three <auth/> attempts (the connection's own limit) with an <abort/> each, and some slack.
  maxStanzas: 10,
});

export function xmlLimits(overrides?: Partial<XmlLimits>): XmlLimits {
  return { ...DEFAULT_XML_LIMITS, ...overrides };
}
