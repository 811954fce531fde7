/**
 * Turning a request into its response (protocol.md section 3): the response
 * echoes the request's commands, with a response at object, command and
 * overall level.
 */
import { XmlError } from '../errors.ts';
import { managerMessages, xmlMessages } from '../messages.ts';
import { failure, success, type Command, type Data, type Item, type LdmDocument, type ResponseStatus } from './document.ts';

/** Version used when the request's own could not be read. */
export const DEFAULT_INTERFACE_VERSION = '1.3';

/** The text of an overall failure for a document that could not be decoded. */
export function describeXmlError(err: XmlError): string {
  return err.code === 'LDM_ERR_XML_NOT_WELL_FORMED' ? xmlMessages.notWellFormed(err.message, err.line) : err.message;
}

/** Response to a document that could not be decoded at all. */
export function overallFailure(message: string, version = DEFAULT_INTERFACE_VERSION): LdmDocument {
  return { root: 'LDM_interface', version, commands: [], response: failure(message) };
}

/**
 * Fill in what the handlers did not: a failure for every malformed command
 * or object, the command status from its objects, the overall status from
 * its commands. Handlers set `data.response` (and may set `cmd.response`).
 */
export function completeResponse(doc: LdmDocument): LdmDocument {
  let allOk = true;
  for (const cmd of doc.commands) {
    finishCommand(cmd);
    if (cmd.response!.status !== 'success') allOk = false;
  }
  doc.response = allOk ? success() : failure();
  return doc;
}

/**
 * Properties a response never echoes back (migrate-domain carries the target's login),
 * in lower case: keys are compared case-insensitively, as the codec matches names.
 */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'username']);

/**
 * Drop every secret from an echoed object: GenericProperty keys and rasd elements
 * named like one, whatever their case, in every Item of every section, the Items of
 * a bind:Binding included (they nest).
 */
function redactSecrets(data: Data): void {
  const env = data.envelope;
  if (!env) return;
  const scrub = (map: Map<string, string>) => {
    for (const key of [...map.keys()]) if (SECRET_KEYS.has(key.toLowerCase())) map.delete(key);
  };
  const items = (list: Item[]) => {
    for (const it of list) {
      scrub(it.props);
      scrub(it.rasd);
      items(it.bindings);
    }
  };
  for (const section of env.sections) items(section.items);
  for (const content of env.contents) for (const section of content.sections) items(section.items);
}

function finishCommand(cmd: Command): void {
  for (const d of cmd.data) redactSecrets(d);
  // A command that failed as a whole (malformed, unknown or refused action, not implemented)
  // carried out none of its objects: each is answered so, never left to look successful.
  const whole = cmd.problem ?? (cmd.response?.status === 'failure' ? cmd.response.messages[0] : undefined);
  let ok = !cmd.problem && cmd.response?.status !== 'failure';
  for (const d of cmd.data) {
    if (d.problem) d.response = failure(d.problem);
    if (!d.response && whole !== undefined) d.response = failure(managerMessages.commandNotRun(whole));
    d.response ??= success();
    if (d.response.status === 'failure') ok = false;
  }
  if (cmd.problem) cmd.response = failure(cmd.problem);
  else cmd.response = ok ? (cmd.response ?? success()) : failureKeeping(cmd.response);
}

const failureKeeping = (r: ResponseStatus | undefined): ResponseStatus => failure(...(r?.messages ?? []));
