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

export function xmlLimits(overrides?: Partial<XmlLimits>): XmlLimits {
  return { ...DEFAULT_XML_LIMITS, ...overrides };
}
