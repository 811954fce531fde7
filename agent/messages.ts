/**
 * Every user-facing text of the agent, in one place. Functions take the
 * variable parts so that wording stays consistent and greppable.
 */
export const xmlMessages = {
  notWellFormed: (detail: string, line: number | undefined) =>
    `XML document is not well-formed${line !== undefined ? ` (line ${line})` : ''}: ${detail}`,
  doctype: () => 'DOCTYPE and entity declarations are not accepted',
  tooLarge: (limit: number) => `XML document exceeds the size limit of ${limit} bytes`,
  tooDeep: (limit: number) => `XML document exceeds the nesting depth limit of ${limit}`,
  tooManyElements: (limit: number) => `XML document exceeds the element count limit of ${limit}`,
  wrongRoot: (found: string, expected: string) =>
    `root element is <${found}>, expected <${expected}>`,
  missingVersion: (root: string) => `<${root}> has no version attribute`,
  noCommands: (root: string) => `<${root}> contains no <cmd> element`,
  noAction: () => 'cmd has no <action> element',
  severalActions: (count: number) => `cmd has ${count} <action> elements, exactly one is allowed`,
  emptyAction: () => 'cmd has an empty <action> element',
  unknownAction: (action: string) => `Unknown action: ${action}`,
  contentWithoutId: () => 'Content element has no id or ovf:id attribute naming the domain',
  itemWithoutType: () => 'Item has no rasd:OtherResourceType',
  propertyWithoutKey: () => 'GenericProperty has no key attribute',
  unexpectedInData: (name: string) => `unexpected <${name}> in <data>, expected <Envelope>`,
  severalEnvelopes: () => 'data holds more than one <Envelope>',
  badStatus: (value: string) => `response status "${value}" is neither success nor failure`,
  responseWithoutStatus: () => 'response has no <status>',
  notAStream: (name: string) => `expected an XMPP <stream:stream> header, got <${name}>`,
} as const;

export const cliMessages = {
  cannotRead: (detail: string) => `cannot read file: ${detail}`,
  validateUsage: () => 'usage: ldm-agent validate FILE...',
  noXmllint: () => 'ldm-agent validate: xmllint not found (Debian package libxml2-utils): schema check skipped',
  agentUsage: () =>
    [
      'usage: ldm-agent [--listen HOST:PORT] [--http HOST:PORT|off] [--state DIR] [--certs DIR]',
      '                 [--machine FILE] [--hostname NAME] [--config FILE] [--local-tcp]',
      '       ldm-agent user add NAME --role read|write [--password-file F] | user remove NAME | user list',
      '       ldm-agent certs init | certs issue NAME --out DIR | certs trust FILE',
      '       ldm-agent validate FILE...',
    ].join('\n'),
  unknownSubcommand: (name: string) => `ldm-agent: unknown subcommand "${name}"`,
  needsDirectory: (flag: string) => `${flag} needs a directory`,
} as const;

export const modelMessages = {
  badMachine: (where: string, what: string) => `machine description ${where}: ${what}`,
} as const;

/** Texts of the manager: what a client reads in resp_msg. Oracle's `ldm` wording where documented. */
export const managerMessages = {
  notImplemented: (action: string) => `${action} is not implemented by this version of ldm-agent`,
  invalidDomain: (name: string) => `Invalid domain name: ${name}`,
} as const;

export const authMessages = {
  usersUnreadable: (file: string, detail: string) => `cannot read the user store ${file}: ${detail}`,
  usersDamaged: (file: string, detail: string) =>
    `the user store ${file} is damaged (${detail}); repair or remove it, it is never reset automatically`,
  shapeNotObject: () => 'the top level is not a JSON object',
  shapeVersion: (found: string) => `unsupported version ${found}, expected 1`,
  shapeUsers: () => '"users" is not an array',
  shapeEntry: (where: string) => `${where} is not an object`,
  shapeField: (where: string, field: string) => `${where}.${field} is missing or invalid`,
  shapeDuplicate: (where: string, name: string) => `${where} repeats the user "${name}"`,
  badUserName: (name: string) =>
    `invalid user name "${name}": use 1 to 64 letters, digits, ".", "_" or "-"`,
  badRole: (role: string) => `invalid role "${role}": use read or write`,
  roleRequired: () => '--role read|write is required',
  userExists: (name: string) => `user "${name}" already exists`,
  userUnknown: (name: string) => `no user "${name}"`,
  emptyPassword: () => 'empty password refused',
  passwordTooLong: (max: number) => `password longer than ${max} bytes refused`,
  passwordControl: () => 'password contains a line break or NUL character',
  passwordPrompt: () => 'Password: ',
  passwordPromptAgain: () => 'Re-enter Password: ',
  passwordsDiffer: () => 'the passwords do not match',
  noPasswordOnStdin: () => 'no password on standard input (give --password-file F or run on a terminal)',
  cancelled: () => 'cancelled',
  passwordFileMissing: (file: string) => `password file ${file} does not exist`,
  passwordFileUnreadable: (file: string, detail: string) => `cannot read password file ${file}: ${detail}`,
  passwordFileOpen: (file: string, mode: number) =>
    `password file ${file} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`,
  passwordFileEmpty: (file: string) => `password file ${file} has an empty first line`,
  userAdded: (name: string, role: string) => `user "${name}" added with role ${role}`,
  userRemoved: (name: string) => `user "${name}" removed`,
  userFailed: (verb: string, detail: string) => `ldm-agent user${verb ? ` ${verb}` : ''}: ${detail}`,
  userUsage: () =>
    [
      'usage: ldm-agent user add NAME --role read|write [--password-file F]',
      '       ldm-agent user remove NAME',
      '       ldm-agent user list',
    ].join('\n'),
  actionRefused: (user: string, role: string, action: string) =>
    `Authorization failed: user ${user} (role ${role}) may not run ${action}`,
} as const;

export const certMessages = {
  summaryLine: (s: { subjectCN?: string | undefined; issuerCN?: string | undefined; fingerprint256: string; validFrom: Date; validTo: Date }) =>
    `CN=${s.subjectCN ?? '(none)'}, issuer CN=${s.issuerCN ?? '(none)'}, SHA-256 ${s.fingerprint256}, ` +
    `valid ${s.validFrom.toISOString()} to ${s.validTo.toISOString()}`,
  labelled: (label: string, text: string) => `${label}: ${text}`,
  notACertificate: (source: string, detail: string) => `${source} is not a valid X.509 certificate: ${detail}`,
  noCertificateInFile: (source: string) => `${source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
  privateKeyInTrust: (file: string) => `${file} holds a private key; give the certificate only`,
  cannotRead: (file: string, detail: string) => `cannot read ${file}: ${detail}`,
  caUnusable: (file: string, detail: string) => `cannot use ${file}: ${detail}`,
  keyMismatch: (cert: string, key: string) => `${key} is not the private key of ${cert}`,
  halfPair: (present: string, missing: string) =>
    `${present} exists but ${missing} does not; restore it, or remove ${present} to have both created anew`,
  noCaKey: (caKey: string, server: string) =>
    `cannot create ${server}: the CA key ${caKey} is missing (restore it, or provide server.pem and server-key.pem)`,
  caMissing: (file: string) => `${file} is missing; run \`ldm-agent certs init\` first`,
  badCertName: (name: string) => `invalid user name "${name}" for a certificate: use 1 to 64 letters, digits, ".", "_" or "-"`,
  outputExists: (file: string) => `${file} already exists; remove it first to issue a new certificate`,
  outRequired: () => '--out DIR is required',
  created: (path: string) => `created ${path}`,
  allPresent: (dir: string) => `certificates already present in ${dir}`,
  uncovered: (server: string, key: string, names: string[]) =>
    `warning: ${server} does not name ${names.join(', ')}; remove ${server} and ${key} and run \`ldm-agent certs init\` to reissue it`,
  issueHint: (cert: string, key: string, ca: string) => `log in with: ldm --cert ${cert} --key ${key} --ca ${ca} -H HOST SUBCOMMAND`,
  trusted: (path: string, s: { subjectCN?: string | undefined; fingerprint256: string }) =>
    `trusted ${path} (CN=${s.subjectCN ?? '(none)'}, SHA-256 ${s.fingerprint256})`,
  alreadyTrusted: (path: string, s: { subjectCN?: string | undefined; fingerprint256: string }) =>
    `already trusted ${path} (CN=${s.subjectCN ?? '(none)'}, SHA-256 ${s.fingerprint256})`,
  failed: (verb: string, detail: string) => `ldm-agent certs${verb ? ` ${verb}` : ''}: ${detail}`,
  usage: () =>
    [
      'usage: ldm-agent certs init [--hostname NAME]... [--listen HOST:PORT]...',
      '       ldm-agent certs issue NAME --out DIR',
      '       ldm-agent certs trust FILE',
    ].join('\n'),
} as const;

/** Texts of the XMPP service: stream error texts and SASL failure texts a client reads. */
export const xmppMessages = {
  handshakeTimeout: (ms: number) => `the XMPP handshake did not finish within ${ms} ms`,
  idleTimeout: (ms: number) => `no input for ${ms} ms`,
  partialTimeout: (ms: number) => `a document was started but not finished within ${ms} ms`,
  unexpectedHeader: () => 'unexpected stream header',
  unexpected: (what: string) => `unexpected <${what}> at this point of the stream`,
  tlsFirst: () => 'STARTTLS is required before anything else on this connection',
  notYetAuthenticated: (what: string) => `<${what}> before authentication: authenticate with SASL first`,
  untrustedCertificate: (cn: string, issuer: string, reason: string) =>
    `client certificate CN=${cn} issued by CN=${issuer} is not trusted: ${reason}`,
  noUserForCertificate: (cn: string) => `no user ${cn} for the client certificate`,
  noCertificate: () => 'EXTERNAL needs a trusted client certificate',
  malformedPlain: () => 'PLAIN message is not base64 of [authzid] NUL user NUL password',
  authzidMismatch: () => 'authorization identity differs from the user',
  tooManyAttempts: (n: number) => `${n} failed authentication attempts`,
  tooManyQueued: (n: number) => `more than ${n} documents waiting for their response`,
  tooSlow: (bytes: number) => `the client reads too slowly: more than ${bytes} bytes of output pending`,
  tooManyConnections: (n: number) => `too many connections (limit ${n})`,
  internalError: () => 'internal error while processing the request; see the agent log',
  shutdown: () => 'the agent is shutting down',
} as const;

/** Texts of the client side (`ldm`, the migration source). */
export const clientMessages = {
  handshakeTimeout: (ms: number) => `no answer from the Logical Domains Manager within ${ms} ms`,
  badServerXml: (detail: string) => `the server sent XML we cannot read: ${detail}`,
  connectionError: (detail: string) => `connection failed: ${detail}`,
  closed: () => 'the connection to the Logical Domains Manager was closed',
  streamError: (condition: string, text?: string) => `the server ended the stream: ${condition}${text ? `: ${text}` : ''}`,
  unexpected: (got: string, wanted: string) => `unexpected <${got}> from the server, expected <${wanted}>`,
  noStartTls: () => 'the server does not offer STARTTLS',
  mechanismNotOffered: (m: string, offered: string[]) => `the server does not offer SASL ${m} (offered: ${offered.join(', ') || 'none'})`,
  saslFailure: (condition: string, text?: string) => `authentication failed: ${condition}${text ? `: ${text}` : ''}`,
  tlsFailed: (detail: string) => `TLS handshake failed: ${detail}`,
} as const;

/** Texts about settings and start-up. */
export const configMessages = {
  badHostPort: (option: string, text: string) => `${option} expects HOST:PORT, got "${text}"`,
  cannotRead: (file: string, detail: string) => `cannot read configuration file ${file}: ${detail}`,
  badFile: (file: string, detail: string) => `configuration file ${file} is not valid: ${detail}`,
  unknownKey: (file: string, key: string) => `configuration file ${file}: unknown key "${key}"`,
  notAString: (key: string) => `setting ${key} must be a string`,
} as const;

/** What the daemon prints when it starts and stops. */
export const daemonMessages = {
  created: (file: string) => `created ${file}`,
  uncovered: (name: string, file: string) => `the server certificate ${file} does not name ${name}; clients verifying it by that name will fail`,
  banner: (host: string, platform: string, strands: number) => `ldm-agent: Logical Domains Manager for ${host} (${platform}, ${strands} strands)`,
  listening: (host: string, port: number, localTcp: boolean) =>
    `XML interface listening on ${host.includes(':') ? `[${host}]` : host}:${port} (XMPP, STARTTLS required, SASL PLAIN or EXTERNAL${localTcp ? '; loopback clients are local: no SASL' : ''})`,
  localSocket: (path: string) => `local socket ${path} (no password, write role)`,
  users: (names: string[]) => `users: ${names.join(', ')}`,
  noUsers: () => 'no users yet: add one with `npx ldm-agent user add NAME --role write`',
  howToConnect: (host: string, port: number, ca: string) =>
    `try: openssl s_client -starttls xmpp -connect ${host.includes(':') ? `[${host}]` : host}:${port} -CAfile ${ca}`,
  stopping: (signal: string) => `received ${signal}, stopping`,
  stopped: () => 'stopped',
  startFailed: (detail: string) => `ldm-agent: cannot start: ${detail}`,
} as const;
