/**
 * Every user-facing text of the agent, in one place. Functions take the
 * variable parts so that wording stays consistent and greppable.
 */

/** A value quoted in a message, cut short: a client's 10,000-digit number is not echoed whole. */
const shorten = (text: string, max = 40) => (text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`);
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
  xmlVersion: (version: string) => `XML version ${version} is not accepted, only 1.0`,
  notAStream: (name: string) => `expected an XMPP <stream:stream> header, got <${name}>`,
  secondHeader: () => 'a second <stream:stream> header inside the stream',
  textBetweenDocuments: () => 'only whitespace, comments, processing instructions and XML declarations may come between documents',
  badDeclaration: () => 'malformed XML declaration',
  notUtf8: (encoding: string) => `encoding ${shorten(encoding)} is not accepted: the stream is UTF-8`,
  schemaUnusable: (file: string, detail: string) => `cannot use the schema ${file}: ${detail}`,
  providerRefused: () => 'libxml2 did not accept the schema file reader',
} as const;

export const cliMessages = {
  cannotRead: (detail: string) => `cannot read file: ${detail}`,
  validateUsage: () => 'usage: ldm-agent validate FILE...',
  cannotCheck: (detail: string) => `ldm-agent validate: no verdict: ${detail}`,
  agentUsage: () =>
    [
      'usage: ldm-agent [--listen HOST:PORT] [--http HOST:PORT|off] [--http-tls] [--state DIR] [--certs DIR]',
      '                 [--machine FILE] [--hostname NAME] [--config FILE] [--local-tcp] [--guest-memory SIZE]',
      '                 [--discovery on|off] [--discovery-port PORT]',
      '       ldm-agent user add NAME --role read|write [--password-file F] | user remove NAME | user list',
      '       ldm-agent certs init | certs issue NAME --out DIR | certs trust FILE',
      '       ldm-agent validate FILE...',
    ].join('\n'),
  unknownSubcommand: (name: string) => `ldm-agent: unknown subcommand "${name}"`,
  needsDirectory: (flag: string) => `${flag} needs a directory`,
} as const;

/** Texts of the `ldm` command line (agent/cli/ldm/). */
export const ldmMessages = {
  usageHead: () => 'usage: ldm [-H HOST[:PORT]] [-u USER] [--password-file F] [--cert F --key F] [--ca F] SUBCOMMAND ...',
  unknownSubcommand: (name: string) => `unknown subcommand "${name}"`,
  unknownOption: (flag: string) => `unknown option ${flag}`,
  optionNeedsValue: (flag: string) => `${flag} needs a value`,
  badHost: (text: string) => `-H takes HOST or HOST:PORT, not "${text}"`,
  loginNeedsHost: () => '-u and --cert log in to a remote agent: give it with -H HOST[:PORT] (the local socket needs no login)',
  certNeedsKey: () => '--cert and --key go together',
  remoteNeedsLogin: () => 'a remote agent (-H) needs a login: -u USER --password-file F, or --cert F --key F',
  remoteNeedsPassword: () => '-u needs --password-file F (a file only its owner can read, the password on its first line)',
  remoteNeedsCa: () => "a remote agent (-H) is verified before anything is sent: give its CA with --ca F (the agent's certs/ca.pem)",
  cannotRead: (file: string, detail: string) => `ldm: cannot read ${file}: ${detail}`,
  passwordFileUnreadable: (file: string, detail: string) => `ldm: cannot read the password file ${file}: ${detail}`,
  passwordFileOpen: (file: string, mode: string) => `ldm: the password file ${file} can be read by others (mode ${mode}): chmod 600 ${file}`,
  passwordFileEmpty: (file: string) => `ldm: the password file ${file} has no password on its first line`,
  cannotConnect: (where: string, detail: string) => `ldm: cannot reach the Logical Domains Manager at ${where}: ${detail}`,
  internal: (detail: string) => `ldm: internal error: ${detail}`,
  // cli/ldm/migrate.ts, progress.ts, events.ts, raw.ts
  migrateArgs: () => 'migrate-domain needs the domain and the target: SOURCE-DOMAIN [USER@]HOST[:PORT][:TARGET-NAME]',
  migrateBadTarget: (text: string) =>
    `"${text}" is not a target: give [USER@]HOST[:PORT][:TARGET-NAME] (a port is digits only; an IPv6 address goes in brackets)`,
  migrateCertNoLogin: () => '-c logs in with the agents\' certificates: give neither USER@ nor -p with it',
  targetPasswordPrompt: () => 'Target Password: ',
  noTargetPassword: () => 'ldm: no target password (type it at the prompt, pipe it on standard input, or give -p FILE or -c)',
  targetPasswordCancelled: () => 'ldm: cancelled: nothing was migrated',
  migrateProgress: (domain: string, phase: string, percent: string, bar: string, rate: string, eta: string, pass: number) =>
    `Migrating ${domain}: ${phase.padEnd(8)} ${percent} [${bar}] ${rate.padStart(9)} ETA ${eta} pass ${pass}`,
  migrateDone: (domain: string, size: string, seconds: string, passes: number, downtimeMs: string) =>
    `Migrated ${domain}: ${size} in ${seconds} s, ${passes} pass${passes === 1 ? '' : 'es'}, downtime ${downtimeMs} ms`,
  migrateInterrupted: (signal: string, domain: string) =>
    `ldm: ${signal}: cancelling the migration of LDom ${domain}; waiting until it runs safely on the source again`,
  migrateCancelFailed: (domain: string, detail: string) => `ldm: could not ask for the cancel of the migration of LDom ${domain}: ${detail}`,
  migrateLost: (domain: string, detail: string) =>
    `ldm: lost the answer to the migration of LDom ${domain} (${detail}); the agents go on with it: see ldm list-domain -o status ${domain} on the source`,
  cancelWhat: (what: string | undefined) => `cancel-operation takes migration, reconf or memdr${what === undefined ? '' : `, not "${what}"`}, then the domain`,
  cancelDomain: (what: string) => `cancel-operation ${what} takes one domain name`,
  eventsClass: (text: string) => `events takes one of domain, resource, hardware, progress or all${text ? `, not "${text}"` : ''}`,
  eventsListening: (kind: string) => `ldm: listening for ${kind === 'all' ? 'all' : kind} events (interrupt to stop)`,
  eventsLost: (detail: string) => `ldm: the connection to the Logical Domains Manager was lost: ${detail}`,
  xmlArgs: () => 'xml takes one file holding an LDM_interface document, or - for standard input',
  xmlNotSent: (where: string, line: number | undefined, detail: string) =>
    `ldm: ${where}${line === undefined ? '' : `:${line}`}: ${detail}; nothing was sent`,
  // discover.ts
  discoverUnknownArgument: (arg: string) => `discover takes -p, -t SECONDS, --address ADDR and --port PORT, not "${arg}"`,
  discoverBadWait: (text: string, max: number) => `-t takes the seconds to wait for answers, from 0.1 to ${max}, not "${text}"`,
  discoverBadPort: (text: string) => `--port takes a UDP port from 1 to 65535, not "${text}"`,
  discoverBadAddress: (text: string) => `--address takes an IPv4 address (the multicast group or one host), not "${text}"`,
  discoverCannotSend: (where: string, detail: string) => `ldm: cannot send a discovery request to ${where}: ${detail}`,
  discoverNone: (where: string, seconds: number) =>
    `ldm: no Logical Domains Manager answered on ${where} within ${seconds} s (is an agent running with discovery on, and multicast allowed? try -t or --address HOST)`,
  // change.ts (subcommands that change domains and services)
  subcommandUsage: (usage: string) => `usage: ldm ${usage}`,
  missingOperands: () => 'missing operands',
  extraOperands: (extra: string[]) => `too many operands: ${extra.join(' ')}`,
  unknownProperty: (key: string, valid: string[]) => `unknown property ${key} (this subcommand takes ${valid.join(', ')})`,
  takesNoProperties: (key: string) => `this subcommand takes no properties, not ${key}=`,
  propertyTwice: (key: string) => `property ${key} is given twice`,
  missingProperties: (keys: string[]) => `give at least one of ${keys.map((k) => `${k}=`).join(', ')}`,
  notANumber: (what: string, text: string) => `${what} must be a whole number, not "${text}"`,
  notASize: (text: string) => `"${text}" is not a size: give a number with K, M or G (for example 4G, 512M)`,
  notVolumeAtService: (text: string) => `"${text}" is not VOLUME@SERVICE`,
  notPortRange: (text: string) => `port-range takes MIN-MAX (for example 5000-5100), not "${text}"`,
  variablePair: (text: string) => `"${text}" is not NAME=VALUE (an empty value is written NAME=)`,
  variableNameOnly: (text: string) => `remove-variable takes variable names, not "${text}"`,
  allWithNames: () => '-a acts on every domain: give it without domain names',
  fileWithNames: () => '-i FILE names the domains itself: give it without properties or domain names',
  notConstraints: (file: string, detail: string) => `ldm: ${file} is not domain constraints as list-constraints -x writes them: ${detail}`,
  noDomainsInFile: () => 'it names no domain',
  cannotList: (detail: string) => `ldm: could not list the domains${detail ? `: ${detail}` : ''}`,
  failedWithoutReason: (what: string) => `ldm: ${what} failed; the Logical Domains Manager gave no reason`,
  // list.ts (the listings)
  listBadFormat: (text: string) => `-o takes status, cpu, memory, network or disk (several joined by commas), not "${text}"`,
  listLongWithFormat: () => '-o shows chosen sections of the long form: give it without -l',
  listXWithP: () => 'list-constraints writes XML (-x) or parseable text (-p), not both',
  listBadDeviceKind: (text: string) => `list-devices lists core, cpu, mau (or crypto), memory (or mem) and io, not "${text}"`,
  listVariableNeedsDomain: () => 'list-variable needs the domain, last: ldm list-variable [VAR-NAME...] DOMAIN',
  listNoOperands: (command: string, text: string) => `${command} takes no operand, not "${text}"`,
  variableNotFound: (name: string, domain: string) => `Variable ${name} not found in LDom ${domain}`,
  listNoAnswer: (action: string) => `ldm: the Logical Domains Manager's answer to ${action} holds no listing`,
} as const;

export const modelMessages = {
  badMachine: (where: string, what: string) => `machine description ${where}: ${what}`,
  stateUnreadable: (file: string, detail: string) => `cannot read the domain database ${file}: ${detail}`,
  stateDamaged: (file: string, detail: string) =>
    `the domain database ${file} is damaged (${detail}); it was left untouched: repair or move it away to start afresh`,
  reconfDropped: (domain: string, reason: string) =>
    `the delayed reconfiguration saved for ${domain} cannot be applied (${reason}): starting without it; ${domain} keeps its previous configuration`,
} as const;

/** The model's side of migrations (agent/model/migrations.ts): refusals, and the log lines of the settling at start. */
export const migrationModelMessages = {
  beingMigrated: (name: string, role: 'source' | 'target', peer: string, error: boolean) =>
    error
      ? `LDom ${name} is in the migration error state (its migration to ${peer} lost the handoff): it cannot be changed until the migration is settled (cancel-operation migration ${name})`
      : `LDom ${name} is being migrated ${role === 'source' ? 'to' : 'from'} ${peer}: it cannot be changed until the migration ends`,
  otherMigrating: (name: string, verb: 'bound' | 'stopped', migrating: string) =>
    `LDom ${name} cannot be ${verb} while LDom ${migrating} is being migrated`,
  alreadyMigrating: (name: string, peer: string) => `A migration of LDom ${name} is already in progress (with ${peer})`,
  controlDomain: () => 'The control domain (primary) cannot be migrated',
  providesServices: (name: string, services: string[]) =>
    `LDom ${name} provides virtual I/O services (${services.join(', ')}) to other domains: it cannot be migrated`,
  notMigrating: (name: string, role: 'source' | 'target') => `LDom ${name} is not the ${role} of a migration`,
  notInError: (name: string) => `LDom ${name} is not in the migration error state`,
  resourceTaken: (name: string, what: string) => `Cannot reserve ${what} for LDom ${name}: it is no longer free`,
  planInvalid: (name: string, detail: string) => `Cannot reserve resources for LDom ${name}: ${detail}`,
  badFinalState: (name: string, from: string, to: string) => `LDom ${name} received as ${from} cannot end the migration ${to}`,
  startTargetRemoved: (name: string, peer: string, id: string) =>
    `half-received domain ${name} (migration ${id} from ${peer}) found at start: removed, its resources freed`,
  startSourceCleared: (name: string, peer: string, id: string, phase: string) =>
    `migration ${id} of ${name} to ${peer} was cut short by a restart (phase ${phase}, before the handoff): cancelled, the domain runs on here`,
  startSourceInError: (name: string, peer: string, id: string) =>
    `domain ${name} is in the migration error state (migration ${id} to ${peer}): its guest is not started until the migration is settled`,
  startSourceInHandoff: (name: string, peer: string, id: string) =>
    `migration ${id} of ${name} to ${peer} was cut short by a restart in its handoff (the target may run the domain): the error state, its guest is not started until the migration is settled`,
} as const;

/** Texts of the manager: what a client reads in resp_msg. Oracle's `ldm` wording where documented. */
export const managerMessages = {
  notImplemented: (action: string) => `${action} is not implemented by this version of ldm-agent`,
  /** Each object of a command that failed as a whole (unknown action, refused role, ...) is answered too. */
  commandNotRun: (reason: string) => `not carried out: ${reason}`,
  tooManyCommands: (count: number, max: number) =>
    `the request has ${count} commands; at most ${max} are accepted in one document: split it into several documents`,
  tooManyObjects: (count: number, max: number) =>
    `the request has ${count} <data> objects; at most ${max} are accepted in one document: split it into several documents`,
  responseTooLarge: (max: number) =>
    `not carried out: the response to this document would pass ${Math.round(max / 1048576)} MiB; ask for fewer domains or send fewer commands per document`,
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
  tooMuchBeforeLogin: (n: number) => `more than ${n} elements before authentication`,
  beforeAuthAnswer: (what: string) => `<${what}> sent before the answer to <auth>: wait for <success/> or <failure/>`,
  tooSlow: (bytes: number) => `the client reads too slowly: more than ${bytes} bytes of output pending`,
  tooManyConnections: (n: number) => `too many connections (limit ${n})`,
  tooManyFromAddress: (n: number) => `too many connections from your address (limit ${n})`,
  tooManyLocal: (n: number) => `too many connections to the local socket (limit ${n})`,
  replaced: (ms: number) => `connection closed to make room for a new one: nothing received for ${ms} ms and not logged in`,
  replacedBusiest: (held: number, limit: number) =>
    `connection closed to make room for a new one: all ${limit} connections are taken and your address holds the most (${held}); not logged in`,
  firstByteTimeout: (ms: number) => `nothing received within ${ms} ms of connecting`,
  tlsTimeout: (ms: number) => `STARTTLS not completed within ${ms} ms of connecting`,
  userRemoved: (user: string) => `user ${user} was removed: the session is closed`,
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
  channelRefused: (channel: string, detail: string) => `the agent refused the binary channel ${channel}: ${detail}`,
  channelPending: () => 'requests are still waiting for their answers: a binary channel is opened on an idle connection',
} as const;

/**
 * Texts of the migration page stream (agent/migration/channel.ts) and of the switch
 * of a connection to it (agent/xmpp/connection.ts).
 */
export const channelMessages = {
  unknownFrame: (type: number) => `unknown frame type ${type} in the migration stream (known: 1 pages, 2 control, 3 end)`,
  frameTooLarge: (bytes: number, max: number) => `migration frame of ${bytes} bytes is larger than the limit of ${max} bytes`,
  pageIndex: (index: number, pages: number) => `page ${index} in the migration stream is past the guest's ${pages} pages`,
  pageKind: (kind: number, index: number) => `page ${index} in the migration stream has kind ${kind} (known: 0 zero page, 1 data)`,
  batchLength: (declared: number, count: number) => `a page batch of ${declared} bytes does not hold the ${count} pages it announces`,
  controlNotJson: (detail: string) => `a control frame of the migration stream is not UTF-8 JSON: ${detail}`,
  endNotEmpty: (bytes: number) => `the end frame of the migration stream carries ${bytes} bytes (it carries none)`,
  afterEnd: () => 'bytes after the end frame of the migration stream',
  truncated: (bytes: number) => `the migration stream ended inside a frame (${bytes} bytes of it received)`,
  closed: () => 'the migration stream is closed',
  socketError: (detail: string) => `the migration stream failed: ${detail}`,
  stalled: (seconds: number) => `the peer took none of the data sent for ${seconds} s (a link down or a peer that stopped reading)`,
  switchMalformed: () => 'a migration-channel request names one channel: one cmd, its name in <arguments>, no <data>',
  switchRole: (user: string, role: string) => `user ${user} has role ${role} and may not open a binary channel: it needs the write role`,
  switchUnknown: (name: string) => `no binary channel ${name} on this agent`,
  switchBadUtf8: () => 'the bytes before the binary channel are not valid UTF-8',
  switched: (name: string) => `binary channel ${name} open: what follows on this connection is binary frames`,
} as const;

/** Texts about settings and start-up. */
export const configMessages = {
  badHostPort: (option: string, text: string) => `${option} expects HOST:PORT, got "${text}"`,
  cannotRead: (file: string, detail: string) => `cannot read configuration file ${file}: ${detail}`,
  badFile: (file: string, detail: string) => `configuration file ${file} is not valid: ${detail}`,
  unknownKey: (file: string, key: string) => `configuration file ${file}: unknown key "${key}"`,
  notAnObject: (key: string) => `configuration key "${key}" must be a JSON object`,
  badValue: (key: string, value: string, expected: string) => `configuration key "${key}" is ${value}: expected ${expected}`,
  notAString: (key: string) => `setting ${key} must be a string`,
  badGuestMemory: (text: string) => `guest memory budget "${text}" is not valid: expected a size such as 512M or 4G`,
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
  guestBudget: (budget: string, how: string) => `simulated guests may hold ${budget} of memory (${how}; --guest-memory SIZE to change)`,
  guestBudgetDefault: (share: number, cap: string) => `${share} % of this host's memory, at most ${cap}`,
  guestBudgetSet: () => 'as configured',
  startFailed: (detail: string) => `ldm-agent: cannot start: ${detail}`,
} as const;

/** Texts of the simulated hypervisor (agent/hypervisor/): guests, their memory and workload. */
export const hypervisorMessages = {
  badSize: (bytes: number) => `guest memory size ${bytes} is not a positive multiple of the 8K page size`,
  tooLarge: (bytes: number, max: number) => `guest memory size ${bytes} exceeds the simulator's limit of ${max} bytes`,
  nameInUse: (name: string) => `a guest named ${name} already exists`,
  wrongState: (name: string, operation: string, state: string) => `cannot ${operation} guest ${name}: it is ${state}`,
  notRunning: (name: string, state: string) => `guest ${name} is ${state}, not running`,
  incomingNeedsRuntime: (name: string) =>
    `guest ${name} was created empty: resuming it needs the runtime state of the guest it continues (an incoming migration)`,
  pageRange: (first: number, count: number, pages: number) =>
    `pages ${first} to ${first + count - 1} are outside guest memory (pages 0 to ${pages - 1})`,
  pageIndex: (index: number, pages: number) => `page ${index} is outside guest memory (pages 0 to ${pages - 1})`,
  pageLength: (index: number, length: number, size: number) => `page ${index}: ${length} bytes given, a page is ${size} bytes`,
  readTooLarge: (count: number, max: number) => `cannot read ${count} pages at once (limit ${max})`,
  dirtyLogOff: (name: string) => `the dirty page log of guest ${name} is not enabled`,
  badThrottle: (value: number) => `throttle ${value} is not a fraction between 0 and 1`,
  badWorkload: (field: string, value: string) => `workload ${field} ${value} is not valid`,
  badVariable: (name: string, value: string, expected: string) => `variable ${name}="${value}" is not valid: expected ${expected}`,
  overBudget: (name: string, wanted: string, held: string, budget: string) =>
    `guest ${name} cannot hold ${wanted} of memory: other guests hold ${held} of the guest memory budget of ${budget} (--guest-memory, config key guestMemory)`,
  workloadFailed: (name: string, detail: string) => `the workload of guest ${name} stopped: ${detail}`,
} as const;

/**
 * Refusals of the domain model: the resp_msg a client reads when a change is
 * not made. Oracle's `ldm` wording where it is documented ("LDom ... ",
 * "Not enough free memory present to meet this request"), ours elsewhere.
 */
export const refusalMessages = {
  noSuchDomain: (name: string) => `LDom ${name} does not exist`,
  invalidName: (name: string) => `Invalid domain name: ${name}`,
  domainExists: (name: string) => `LDom ${name} already exists`,
  reconfPending: () =>
    'A delayed reconfiguration of the primary domain is pending: other domains cannot be changed until the primary reboots or the reconfiguration is cancelled (remove-reconf primary)',
  notEnoughCpus: (wanted: number, free: number) => `Not enough free CPUs to meet this request: ${wanted} requested, ${free} free`,
  notEnoughCores: (wanted: number, free: number) => `Not enough free whole cores to meet this request: ${wanted} requested, ${free} free`,
  notEnoughMemory: (wanted: string, free: string) => `Not enough free memory present to meet this request: ${wanted} requested, ${free} free`,
  fragmented: (wanted: string, maxBlocks: number, largest: string) =>
    `Free memory is too fragmented to bind ${wanted}: it would take more than ${maxBlocks} memory blocks (largest free block ${largest})`,
  notEnoughMau: (wanted: number, free: number, domain: string) =>
    `Not enough free crypto units on the cores of LDom ${domain}: it would have ${wanted}, and ${free} are available there`,
  noConsolePort: () => 'No free console port: add a virtual console concentrator (add-vconscon) or widen its port range',
  onlyWhenInactive: (name: string, what: string, state: string) => `LDom ${name} is ${state}: its ${what} can only be changed while it is inactive`,
  onlyWhenNotActive: (name: string, what: string) => `LDom ${name} is active: its ${what} can only be changed while it is not running`,
  cannotRemovePrimary: () => 'The control domain primary cannot be removed',
  mustBeInactiveToRemove: (name: string, state: string) => `LDom ${name} is ${state}: stop and unbind it before removing it`,
  providesServices: (name: string, services: string[]) => `LDom ${name} provides services (${services.join(', ')}): remove them first`,
  alreadyBound: (name: string, state: string) => `LDom ${name} is already ${state}`,
  noCpus: (name: string) => `LDom ${name} has no virtual CPUs: add some with add-vcpu before binding it`,
  noMemory: (name: string) => `LDom ${name} has no memory: add some with add-memory before binding it`,
  controlDomain: (what: string) => `The control domain primary cannot be ${what}`,
  stopFirst: (name: string) => `LDom ${name} is active: stop it before unbinding it`,
  notBound: (name: string) => `LDom ${name} is not bound`,
  alreadyActive: (name: string) => `LDom ${name} is already active`,
  bindFirst: (name: string) => `LDom ${name} is not bound: bind it before starting it`,
  notActive: (name: string) => `LDom ${name} is not active`,
  mixedCpuUnits: (name: string) => `LDom ${name} counts its CPUs in whole cores or in strands, not both: use set-vcpu to switch`,
  removeTooMany: (name: string, what: string, asked: number | string, has: number | string) => `Cannot remove ${asked} ${what} from LDom ${name}: it has ${has}`,
  lastCpu: (name: string) => `Cannot remove the last virtual CPU of LDom ${name} while it is bound or active`,
  lastMemory: (name: string) => `Cannot remove all memory of LDom ${name} while it is bound or active`,
  noReconf: (name: string) => `No delayed reconfiguration is pending on LDom ${name}`,
  noSuchIo: (device: string) => `No physical I/O device ${device} on this machine`,
  ioInUse: (device: string, owner: string) => `Physical I/O device ${device} is assigned to LDom ${owner}`,
  ioNotAssigned: (device: string, name: string) => `Physical I/O device ${device} is not assigned to LDom ${name}`,
  pfNotAssignable: (pf: string) => `${pf} is a physical function: assign its endpoint, or create virtual functions (create-vf) and assign those`,
  endpointHasVfs: (endpoint: string, count: number) => `${endpoint} has ${count} virtual function(s): destroy them first (destroy-vf)`,
  notAPf: (name: string) => `${name} is not an SR-IOV physical function`,
  iovOff: (bus: string, pf: string) => `I/O virtualization is not enabled on bus ${bus} of ${pf}: enable it first (set-io iov_bus_enable_iov=on ${bus})`,
  pfWithoutDomain: (pf: string, endpoint: string) => `No domain owns ${endpoint}: the physical function ${pf} needs a root domain to create virtual functions`,
  tooManyVfs: (pf: string, max: number, have: number) => `${pf} can have at most ${max} virtual functions and has ${have}`,
  uniquePropertyForMany: (key: string) => `${key} names one device: give it only when creating one virtual function`,
  countNeedsPf: (vf: string) => `A count of virtual functions to destroy goes with a physical function, not with ${vf}`,
  notLastVf: (vf: string, last: string) => `Virtual functions are destroyed last first: ${last} must be destroyed before ${vf}`,
  noVfs: (pf: string) => `${pf} has no virtual functions`,
  notThatManyVfs: (pf: string, asked: number, have: number) => `Cannot destroy ${asked} virtual functions of ${pf}: it has ${have}`,
  vfAssigned: (vf: string, owner: string) => `Virtual function ${vf} is assigned to LDom ${owner}: remove it from the domain first (remove-io)`,
  ioPropertyUnknown: (key: string, device: string, valid: readonly string[]) =>
    `Property ${key} cannot be set on ${device} (${valid.length > 0 ? `settable: ${valid.join(', ')}` : 'it has no settable properties'})`,
  ioValueRange: (key: string, value: string, min: number, max: number) => `Invalid value "${value}" for ${key} (valid: ${min} to ${max})`,
  badWwn: (key: string, value: string) => `Invalid value "${value}" for ${key} (valid: a world-wide name of 8 bytes, such as 10:00:00:14:4f:f9:00:01)`,
  wwnInUse: (wwn: string, vf: string) => `World-wide name ${wwn} is already used by ${vf}`,
  busHasVfs: (bus: string, count: number) => `Bus ${bus} has ${count} virtual function(s): destroy them before disabling I/O virtualization`,
  tooManyAltMacs: (count: number, max: number) => `${count} alternate MAC addresses given: a virtual function has at most ${max}`,
  bandwidthOver: (pf: string, others: number, asked: number) =>
    `The virtual functions of ${pf} would have ${others + asked}% of its bandwidth (${others}% already given to the others): at most 100%`,
  vfInActiveDomain: (vf: string, owner: string) => `Virtual function ${vf} is assigned to LDom ${owner}, which is active: stop the domain to change it`,
  badUuid: (value: string) => `Invalid UUID "${value}" (expected the form 6c908858-12ef-e520-9eb3-f1cd3dbc3a59)`,
  uuidInUse: (uuid: string, other: string) => `UUID ${uuid} is already used by LDom ${other}`,
  uuidOnlyAtCreation: (name: string) => `The UUID of LDom ${name} is given when the domain is created (add-domain) and cannot be changed`,
  hostidInUse: (hostid: string, other: string) => `Host ID ${hostid} is already used by LDom ${other}`,
  badShutdownGroup: (name: string, value: string, primary: boolean) =>
    primary ? `The shutdown group of the control domain ${name} is always 0, not ${value}` : `Invalid shutdown group "${value}" for LDom ${name} (valid: 1 to 15)`,
  maxCoresBelow: (name: string, max: number, cores: number) => `LDom ${name} would have ${cores} whole cores: more than its max-cores (${max})`,
  badPerfCounters: (value: string) => `Invalid perf-counters "${value}": each set at most once, and strand and htstrand not together`,
  globalCountersTaken: (other: string) => `The global performance counters are already given to LDom ${other}: only one domain at a time may have them`,
  invalidServiceName: (name: string) => `Invalid name: ${name}`,
  serviceExists: (name: string) => `A service named ${name} already exists`,
  noSuchVds: (name: string) => `Virtual disk server ${name} not found`,
  noSuchVsw: (name: string) => `Virtual switch ${name} not found`,
  noSuchVcc: (name: string) => `Virtual console concentrator ${name} not found`,
  noSuchVolume: (volume: string, service: string) => `Volume ${volume}@${service} not found`,
  serviceInUse: (name: string, users: string[]) => `${name} is in use by ${users.map((u) => `LDom ${u}`).join(', ')}`,
  volumeExists: (volume: string, service: string) => `Volume ${volume}@${service} already exists`,
  badVolumeOptions: (bad: string[]) => `Invalid volume option(s): ${bad.join(', ')} (valid: ro, slice, excl)`,
  deviceExists: (kind: string, dev: string, name: string) => `LDom ${name} already has a ${kind} named ${dev}`,
  noSuchDevice: (kind: string, dev: string, name: string) => `LDom ${name} has no ${kind} named ${dev}`,
  portTaken: (port: number) => `Console port ${port} is not free`,
  variableExists: (variable: string, name: string) => `Variable ${variable} already exists in LDom ${name}`,
  noSuchVariable: (variable: string, name: string) => `Variable ${variable} not found in LDom ${name}`,
  spconfigExists: (name: string) => `SP configuration ${name} already exists`,
  noSuchSpconfig: (name: string) => `SP configuration ${name} not found`,
  cannotRemoveFactory: () => 'The factory-default SP configuration cannot be removed',
  badMac: (mac: string) => `Invalid MAC address: ${mac}`,
  macInUse: (mac: string) => `MAC address ${mac} is already in use`,
  badValue: (key: string, value: string, valid: readonly string[]) => `Invalid value "${value}" for ${key} (valid: ${valid.join(', ')})`,
  selfMaster: (name: string) => `LDom ${name} cannot be its own master`,
  tooManyMasters: () => 'A domain may have at most 4 master domains',
  badPortRange: (min: number, max: number) => `Invalid console port range ${min}-${max}`,
  portRangeOverlap: (other: string) => `Console port range overlaps that of ${other}`,
  amountTooLarge: (name: string, what: string, amount: string, max: string) =>
    `The ${what} of LDom ${name} would be ${amount}: more than the largest supported value, ${max}`,
  tooManyDomains: (limit: number, wanted: number) =>
    `This machine allows at most ${limit} domains (the primary included): ${wanted} would exist after this request`,
  noFreeMac: (count: number, first: string, last: string) =>
    `All ${count} automatic MAC addresses (${first} to ${last}) are in use: give a MAC address explicitly (mac-addr) or remove unused vnets, vswitches or domains`,
  variableNameTooLong: (variable: string, bytes: number, max: number) =>
    `Variable name ${shorten(variable)} is ${bytes} bytes long: the limit is ${max} bytes`,
  variableValueTooLong: (variable: string, bytes: number, max: number) =>
    `The value of variable ${shorten(variable)} is ${bytes} bytes long: the limit is ${max} bytes`,
  tooManyVariables: (name: string, max: number) => `LDom ${name} would have more than ${max} variables: the limit is ${max}`,
  tooManyDevices: (kind: string, name: string, max: number) => `LDom ${name} would have more than ${max} ${kind}s: the limit is ${max} per domain`,
  stateInvalid: (problem: string) =>
    `The change was not made: the domain database would no longer load at the next start (${problem})`,
  stateTooLarge: (bytes: number, max: number) =>
    `The change was not made: the domain database would grow to ${bytes} bytes, over the limit of ${max} bytes; remove SP configurations, variables or domains first`,
} as const;

/** Texts about a request object that cannot be read, and notes (3.6 warnings) on ones that succeeded. */
export const objectMessages = {
  noDomain: () => 'the object names no domain: expected a Content with an id',
  noItem: (type: string) => `the object has no ${type} item`,
  missingProperty: (type: string, key: string) => `${type} item is missing its ${key} property`,
  missingUnits: (type: string) => `${type} item is missing rasd:AllocationUnits`,
  badNumber: (type: string, key: string, value: string) => `${type} item: ${key} "${value}" is not a valid number`,
  badSize: (value: string) => `"${value}" is not a size (examples: 4G, 512M)`,
  numberTooLarge: (type: string, key: string, value: string, max: number) =>
    `${type} item: ${key} ${shorten(value)} is larger than the largest supported value, ${max}`,
  sizeTooLarge: (value: string, max: number) => `size ${shorten(value)} is larger than the largest supported size, ${max} bytes`,
  badBoolean: (type: string, key: string, value: string) => `${type} item: ${key} "${value}" is neither true nor false`,
  noData: (action: string) => `${action} needs a <data> object naming what to act on`,
  memoryRounded: (asked: string, rounded: string) => `Memory size ${asked} was rounded up to ${rounded} (memory is allocated in 256M units)`,
  delayedReconf: (name: string) =>
    `Initiating a delayed reconfiguration operation on the ${name} domain: the change takes effect when it reboots, and other domains cannot be changed until then`,
  noMigration: (name: string) => `No migration of LDom ${name} is in progress`,
  noMemdr: (name: string) => `No memory dynamic reconfiguration of LDom ${name} is in progress`,
  cancelWhat: (what: string | undefined) => `cancel-operation needs migration, reconf or memdr${what ? `, not ${what}` : ''}`,
  notSupported: (action: string, platform: string) => `${action} is not supported on ${platform}`,
  ignoredItem: (type: string, action: string) => `the ${type} item was ignored: ${action} does not use it`,
  extraItem: (type: string, action: string) => `a further ${type} item was ignored: ${action} takes one`,
  manyItems: (note: string, count: number) => `${note} (${count} items)`,
  ignoredKeys: (type: string, keys: string[], action: string) => `${type} item: ${action} does not use ${keys.join(', ')}: ignored`,
  uuidConflict: (element: string, property: string) => `ldom_info item: its uuid element (${element}) and uuid property (${property}) differ`,
  badCount: (action: string, value: string) => `${action}: -n takes a number of virtual functions or max, not "${value}"`,
  unknownOption: (action: string, option: string) => `${action}: option ${option} is not supported`,
  vfsCreated: (names: string[]) => `Created virtual function${names.length === 1 ? '' : 's'} ${names.join(', ')}`,
  vfsDestroyed: (names: string[]) => `Destroyed virtual function${names.length === 1 ? '' : 's'} ${names.join(', ')}`,
  internal: () => 'internal error while carrying out this object; see the agent log',
} as const;

/** Refusals about a domain's simulated guest. */
export const guestMessages = {
  workingSetTooLarge: (name: string, ws: number, memory: number) =>
    `sim-working-set of LDom ${name} (${ws} bytes) is larger than its memory (${memory} bytes)`,
  startedWithoutWorkingSet: (detail: string) => `guest started without its working set: ${detail}`,
} as const;

/** Texts of the logger itself. */
export const logMessages = {
  repeated: (msg: string, times: number, seconds: number) => `${msg} (repeated ${times} more times in ${seconds} s, not shown)`,
} as const;

/** The migration as it runs (agent/migration/source.ts, target.ts, service.ts): reason lines and log texts. */
export const migrationRunMessages = {
  // Reaching and logging in to the target (source side).
  unreachable: (target: string, detail: string) =>
    `Failed to establish connection with the Logical Domains Manager on target ${target}: ${detail}`,
  loginRefused: (target: string, user: string, detail: string) =>
    `Login to the Logical Domains Manager on target ${target} as ${user} failed: ${detail}`,
  certificateRefused: (target: string, cn: string, detail: string) =>
    `Target ${target} refused this agent's certificate (CN ${cn}): ${detail}. It is not trusted there unless the target has this agent's CA in its certs/trust/ and a write user named ${cn}`,
  targetNotTrusted: (target: string, subject: string, issuer: string, detail: string) =>
    `The certificate of target ${target} (CN ${subject}, issued by ${issuer}) is not trusted: ${detail}; put the target's CA (its certs/ca.pem) in certs/trust/ and restart the agent`,
  channelRefused: (target: string, detail: string) => `Target ${target} refused the migration: ${detail}`,
  noCredentials: () => 'migrate-domain needs the target login: username and password (base64), or -c for certificate mode',
  userWithCertificate: () => 'migrate-domain -c takes no username or password: the agents log in with their certificates',
  noTarget: () => 'migrate-domain needs the target machine: ldom_info property target (host or host:port) in the second Content',
  badTarget: (text: string) => `The target "${text}" is not a host or host:port`,
  badBase64: (key: string) => `The ${key} of the target login is not base64`,
  badOptions: (tokens: string[]) => `migrate-domain takes the options -n (dry run), -f (force) and -c (certificates), not ${tokens.join(' ')}`,
  oneDomainPerCommand: () => 'migrate-domain migrates one domain per command: this object was not carried out',
  twoContents: () => 'migrate-domain takes two Contents: the domain to migrate, then its name on the target with the target and the login',
  // During the migration (reason lines of a failure).
  peerLost: (target: string, phase: string, detail: string) => `The connection to target ${target} was lost during ${phase}: ${detail}`,
  peerTimeout: (target: string, what: string, seconds: number) => `Target ${target} did not answer ${what} within ${seconds} s`,
  targetFailed: (target: string, reason: string) => `Target ${target} could not receive the domain: ${reason}`,
  digestMismatch: (source: string, target: string) =>
    `The memory received by the target differs from the source's (digest ${source} on the source, ${target} on the target): the domain runs on here`,
  changedDuringChecks: (name: string) => `LDom ${name} was changed while the target checked it: migrate it again`,
  cancelled: (name: string) => `The migration of LDom ${name} was cancelled; the domain runs on here`,
  sourceFailed: (detail: string) => `The source could not go on: ${detail}`,
  protocolBroken: (detail: string) => `The other agent broke the migration conversation: ${detail}`,
  sourceSilent: (source: string, seconds: number) => `The source ${source} sent nothing for ${seconds} s: the received domain is removed`,
  cancelledBySource: (reason: string) => `The source called the migration off: ${reason}`,
  noMigrationKnown: (name: string) => `No migration of LDom ${name} is known to this agent (running or among the last finished)`,
  // cancel-operation migration.
  cancelOnTarget: (name: string, peer: string) => `LDom ${name} is the target of a migration from ${peer}: only the source machine can cancel a migration`,
  tooLateToCancel: (name: string) =>
    `The migration of LDom ${name} is in its handoff: the target is resuming the domain and it can no longer be cancelled`,
  settledRunsOnTarget: (name: string, target: string) =>
    `LDom ${name} runs on target ${target}: the migration completed there, the copy here has been removed`,
  // Log lines of the settlement of a source in the error state.
  errorState: (name: string, target: string, detail: string) =>
    `migration of ${name} to ${target} lost its handoff (${detail}): the domain is in the error state until the agents settle it`,
  settledCompleted: (name: string, target: string) => `settled: ${name} runs on ${target}; the copy here was removed`,
  settledRestored: (name: string, target: string) => `settled: ${target} does not run ${name}; the domain runs here again`,
  settledManually: (name: string, target: string, detail: string) =>
    `cancel-operation -f migration ${name}: target ${target} cannot be asked (${detail}); restored on the operator's word`,
  settleFailed: (name: string, target: string, detail: string) => `cannot settle ${name} with ${target} yet: ${detail}`,
  settleBusy: (name: string) => `The migration error state of LDom ${name} is being settled with its target right now; try again in a moment`,
  noLoginKept: () => 'no login for the target is kept (password logins are not saved across a restart)',
  targetStillResuming: (target: string) => `target ${target} is still resuming the domain`,
  settleNeedsCredentials: (name: string, target: string) =>
    `${name} waits in the migration error state for ${target}, but its password login was not kept across the restart: cancel-operation migration ${name} settles it (asking with this agent's certificate, or with -f on your word)`,
  settleUnreachable: (name: string, target: string, detail: string) =>
    `Cannot settle the migration of LDom ${name}: target ${target} cannot be asked (${detail}) and may be running the domain; the agent keeps asking. Once you have made sure ${target} does not run it, cancel-operation -f migration ${name} restores it here`,
} as const;

/**
 * Phase 1 of a migration (agent/migration/checks.ts): one reason line per failed
 * check, then the summary line. Oracle's wording where migration.md quotes it (the
 * summary lines, the memory congruency line, the OpenBoot and debugger lines), ours
 * in the same style elsewhere. `source`/`target` are the machines' host names.
 */
export const migrationMessages = {
  failed: (name: string) => `Domain Migration of LDom ${name} failed`,
  wouldFail: (name: string) => `Domain Migration of LDom ${name} would fail if attempted`,
  // On the source, before the target is asked.
  noSuchDomain: (name: string) => `LDom ${name} does not exist`,
  controlDomain: (name: string) => `The control domain ${name} cannot be migrated`,
  noGuest: (name: string) => `LDom ${name} is active but its guest is not running on this machine`,
  // On the target, in the order of the checks.
  incompleteOffer: (name: string, what: string) => `The source sent no ${what} for LDom ${name}: the migration offer is incomplete`,
  protocol: (source: string, theirs: number, target: string, ours: number) =>
    `Source machine ${source} speaks migration protocol version ${theirs}, target machine ${target} version ${ours}: the versions are not compatible`,
  managerVersion: (source: string, theirs: string, target: string, ours: string) =>
    `Logical Domains Manager ${theirs} on source machine ${source} and ${ours} on target machine ${target} are not compatible for migration (both must be 1.1 or later, at most one major version apart)`,
  firmware: (machine: string, role: 'source' | 'target', firmware: string, minimum: string) =>
    `System firmware ${firmware} on ${role} machine ${machine} does not support domain migration (${minimum} or later is needed)`,
  invalidName: (name: string) => `Invalid domain name on the target: ${name}`,
  nameTaken: (name: string, target: string) => `LDom ${name} already exists on target machine ${target}: give the domain another name there (target-host:new-name)`,
  tooManyDomains: (target: string, limit: number) => `Target machine ${target} already has ${limit} domains, the most it allows (the primary included)`,
  uuidInUse: (uuid: string, name: string, other: string, target: string) => `UUID ${uuid} of LDom ${name} is already used by LDom ${other} on target machine ${target}`,
  hostidInUse: (hostid: string, name: string, other: string, target: string) =>
    `Host ID ${hostid} of LDom ${name} is already used by LDom ${other} on target machine ${target}`,
  domainMacInUse: (mac: string, name: string, target: string) => `MAC address ${mac} of LDom ${name} is already in use on target machine ${target}`,
  globalCounters: (name: string, other: string, target: string) =>
    `LDom ${name} has the global performance counters, which LDom ${other} holds on target machine ${target}: only one domain at a time may have them`,
  cpuType: (name: string, source: string, sourceCpu: string, target: string, targetCpu: string) =>
    `The CPU of target machine ${target} (${targetCpu}) differs from that of source machine ${source} (${sourceCpu}): live migration of LDom ${name} needs cpu-arch=generic (set while the domain is inactive) or -f`,
  cpuClass: (name: string, machine: string, cpu: string) =>
    `LDom ${name} has cpu-arch=migration-class1, which the ${cpu} CPU of machine ${machine} does not support (SPARC T4 or later is needed)`,
  notEnoughCores: (name: string, target: string, vcpus: number, wanted: number, free: number) =>
    `Not enough free whole cores on target machine ${target} for the ${vcpus} virtual CPUs of LDom ${name}: ${wanted} needed, ${free} free`,
  notEnoughCpus: (name: string, target: string, wanted: number, free: number) =>
    `Not enough free CPUs on target machine ${target} for LDom ${name}: ${wanted} needed, ${free} free`,
  notEnoughMemory: (name: string, target: string, wanted: string, free: string) =>
    `Not enough free memory on target machine ${target} for LDom ${name}: ${wanted} needed, ${free} free`,
  memoryLayout: (pa: string, ra: string, size: string) =>
    `Free memory layout and congruency requirements prevent binding the memory block with PA ${pa}, RA ${ra}, and size ${size}`,
  physicalIo: (name: string, device: string) =>
    `LDom ${name} has direct access to the physical I/O device ${device}: a domain with PCIe buses, PCIe endpoints or SR-IOV virtual functions cannot be migrated`,
  noVolume: (volume: string, service: string, disk: string, name: string, target: string) =>
    `Virtual disk back end ${volume}@${service} of disk ${disk} of LDom ${name} does not exist on target machine ${target}`,
  volumeOptions: (volume: string, service: string, theirs: string, target: string, ours: string) =>
    `Virtual disk back end ${volume}@${service} has options ${theirs || 'none'} on the source and ${ours || 'none'} on target machine ${target}: they must be the same for a live migration`,
  volumeMpgroup: (volume: string, service: string, theirs: string, target: string, ours: string) =>
    `Virtual disk back end ${volume}@${service} is in mpgroup ${theirs || 'none'} on the source and ${ours || 'none'} on target machine ${target}: they must be the same for a live migration`,
  noVsw: (service: string, vnet: string, name: string, target: string) =>
    `Virtual switch ${service} needed by network ${vnet} of LDom ${name} does not exist on target machine ${target}`,
  vnetMacInUse: (mac: string, vnet: string, name: string, target: string) =>
    `MAC address ${mac} of network ${vnet} of LDom ${name} is already in use on target machine ${target}`,
  noConsole: (name: string, target: string) =>
    `No virtual console concentrator on target machine ${target} has a free port for LDom ${name} (add-vconscon, or widen a port range)`,
  delayedReconf: (machine: string, role: 'source' | 'target') =>
    `Migration is not supported while a delayed reconfiguration is pending on the ${role} machine ${machine}`,
  elastic: (machine: string, role: 'source' | 'target') =>
    `Migration is not supported while the elastic power management policy is in effect on the ${role} machine ${machine}`,
  runState: (name: string, state: 'OpenBoot Running' | 'Solaris debugging') => `Migration is not supported while the domain ${name} is in the '${state}' state`,
  osTooOld: (name: string, os: string) =>
    `Live migration of LDom ${name} is not supported: its OS release ${os} is older than Solaris 10 9/10 (s10u9); stop the domain to migrate it cold`,
} as const;

/** Texts of the discovery responder (agent/discovery.ts). */
export const discoveryMessages = {
  answering: (group: string, port: number, multicast: boolean) =>
    multicast
      ? `discovery: answering requests on UDP ${group}:${port} (--discovery off to stop)`
      : `discovery: answering requests sent to UDP port ${port} (multicast group ${group} unavailable)`,
  cannotBind: (port: number, detail: string) => `discovery: cannot listen on UDP port ${port} (${detail}); managers on the network will not find this one`,
  noMulticast: (group: string, port: number) =>
    `discovery: cannot join multicast group ${group} on any interface; only requests sent to UDP port ${port} directly are answered`,
  cannotJoinOn: (group: string, address: string, detail: string) => `discovery: cannot join ${group} on ${address}: ${detail}`,
  socketError: (detail: string) => `discovery: socket error: ${detail}`,
  cannotAnswer: (address: string, detail: string) => `discovery: cannot answer ${address}: ${detail}`,
  badSwitch: (text: string) => `--discovery takes on or off, not "${text}"`,
  badPort: (text: string) => `the discovery port must be a whole number from 1 to 65535, not "${text}"`,
} as const;

/** Texts of the web app (agent/http/): JSON error messages and the daemon's lines about it. */
export const httpMessages = {
  notFound: (path: string) => `no such resource: ${path}`,
  noSuchDomain: (name: string) => `LDom ${name} does not exist`,
  badJson: 'the request body is not valid JSON',
  bodyTooLarge: (limit: number) => `the request body is larger than ${limit} bytes`,
  unauthorized: 'this request needs a user with the write role (HTTP Basic)',
  forbidden: (user: string) => `user ${user} has the read role; cancelling a migration needs the write role`,
  insecure: 'HTTP Basic is refused over plain HTTP on a non-loopback address; start the agent with --http-tls',
  tooManyLogins: (seconds: number) => `too many failed logins from this address; try again in ${seconds} s`,
  internal: 'internal error (see the agent log)',
  listening: (scheme: 'http' | 'https', host: string, port: number) => `web app: ${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/ (--http off to stop)`,
  cannotListen: (host: string, port: number, detail: string) => `web app: cannot listen on ${host}:${port} (${detail}); the agent runs on without it`,
  requestFailed: 'web app: request failed',
} as const;
