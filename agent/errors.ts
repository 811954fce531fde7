/**
 * Typed errors with stable codes (the undici habit): callers branch on `code`,
 * never on message text. Every code the agent can produce is listed here.
 */
export const ErrorCodes = {
  XML_NOT_WELL_FORMED: 'LDM_ERR_XML_NOT_WELL_FORMED',
  XML_DOCTYPE: 'LDM_ERR_XML_DOCTYPE',
  XML_LIMIT: 'LDM_ERR_XML_LIMIT',
  XML_STRUCTURE: 'LDM_ERR_XML_STRUCTURE',
  USAGE: 'LDM_ERR_USAGE',
  FILE: 'LDM_ERR_FILE',
  MACHINE: 'LDM_ERR_MACHINE',
  CLIENT: 'LDM_ERR_CLIENT',
  STATE_DAMAGED: 'LDM_ERR_STATE_DAMAGED',
  /** A new state the loader would reject: refused before it is written. */
  STATE_INVALID: 'LDM_ERR_STATE_INVALID',
  STATE_TOO_LARGE: 'LDM_ERR_STATE_TOO_LARGE',
  REFUSED: 'LDM_ERR_REFUSED',
  USERS_DAMAGED: 'LDM_ERR_USERS_DAMAGED',
  USER_EXISTS: 'LDM_ERR_USER_EXISTS',
  USER_UNKNOWN: 'LDM_ERR_USER_UNKNOWN',
  USER_NAME: 'LDM_ERR_USER_NAME',
  ROLE: 'LDM_ERR_ROLE',
  PASSWORD: 'LDM_ERR_PASSWORD',
  PASSWORD_FILE: 'LDM_ERR_PASSWORD_FILE',
  CERT_INVALID: 'LDM_ERR_CERT_INVALID',
  CERT_EXISTS: 'LDM_ERR_CERT_EXISTS',
  CERTS_DAMAGED: 'LDM_ERR_CERTS_DAMAGED',
  GUEST_SIZE: 'LDM_ERR_GUEST_SIZE',
  GUEST_EXISTS: 'LDM_ERR_GUEST_EXISTS',
  GUEST_STATE: 'LDM_ERR_GUEST_STATE',
  GUEST_PAGE_RANGE: 'LDM_ERR_GUEST_PAGE_RANGE',
  GUEST_DIRTY_LOG: 'LDM_ERR_GUEST_DIRTY_LOG',
  GUEST_WORKLOAD: 'LDM_ERR_GUEST_WORKLOAD',
  GUEST_VARIABLE: 'LDM_ERR_GUEST_VARIABLE',
  /** Guest memory would pass the simulator's budget for resident guest memory. */
  GUEST_MEMORY_BUDGET: 'LDM_ERR_GUEST_MEMORY_BUDGET',
  /** A frame of the migration page stream breaks the wire format (agent/migration/README.md). */
  MIGRATION_FRAME: 'LDM_ERR_MIGRATION_FRAME',
  /** The migration page stream cannot go on: its socket closed or failed. */
  MIGRATION_CHANNEL: 'LDM_ERR_MIGRATION_CHANNEL',
  /** A migration ended without moving the domain: a check, the peer, a cancel (the message says which). */
  MIGRATION_FAILED: 'LDM_ERR_MIGRATION_FAILED',
  /** The peer broke the migration conversation (a message out of order or malformed). */
  MIGRATION_PROTOCOL: 'LDM_ERR_MIGRATION_PROTOCOL',
  /** Web app (agent/http/): the answer's HTTP status goes with each. No such route or domain (404). */
  HTTP_NOT_FOUND: 'LDM_ERR_HTTP_NOT_FOUND',
  /** A request body that is not JSON, or a bad parameter (400). */
  HTTP_BAD_REQUEST: 'LDM_ERR_HTTP_BAD_REQUEST',
  /** A request body over the bound (413). */
  HTTP_BODY_TOO_LARGE: 'LDM_ERR_HTTP_BODY_TOO_LARGE',
  /** No or wrong HTTP Basic credentials (401). */
  HTTP_UNAUTHORIZED: 'LDM_ERR_HTTP_UNAUTHORIZED',
  /** The user's role does not allow the request (403). */
  HTTP_FORBIDDEN: 'LDM_ERR_HTTP_FORBIDDEN',
  /** Basic credentials over plain HTTP to a non-loopback address (403). */
  HTTP_INSECURE: 'LDM_ERR_HTTP_INSECURE',
  /** Too many failed logins from one address (429, Retry-After). */
  HTTP_TOO_MANY_LOGINS: 'LDM_ERR_HTTP_TOO_MANY_LOGINS',
  /** The agent refused the operation (409): the message says why (no migration to cancel, ...). */
  HTTP_CONFLICT: 'LDM_ERR_HTTP_CONFLICT',
  /** An unexpected failure inside the agent (500). */
  HTTP_INTERNAL: 'LDM_ERR_HTTP_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class LdmError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LdmError';
  }
}

/** An error tied to a position in an XML document (1-based line). */
export class XmlError extends LdmError {
  readonly line: number | undefined;
  constructor(code: ErrorCode, message: string, line?: number) {
    super(code, message);
    this.line = line;
    this.name = 'XmlError';
  }
}
