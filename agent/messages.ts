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
} as const;

export const cliMessages = {
  cannotRead: (detail: string) => `cannot read file: ${detail}`,
  validateUsage: () => 'usage: ldm-agent validate FILE...',
  noXmllint: () => 'ldm-agent validate: xmllint not found (Debian package libxml2-utils): schema check skipped',
  agentUsage: () =>
    [
      'usage: ldm-agent [--listen HOST:PORT] [--state DIR] [--certs DIR] [--machine FILE] ...',
      '       ldm-agent validate FILE...',
    ].join('\n'),
  unknownSubcommand: (name: string) => `ldm-agent: unknown subcommand "${name}"`,
  daemonNotYet: () => 'ldm-agent: the daemon is not available yet in this version; try `ldm-agent validate FILE...`',
} as const;
