/**
 * Turning a request into its response (protocol.md section 3): the response
 * echoes the request's commands, with a response at object, command and
 * overall level.
 */
import { XmlError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import { failure, success, type Command, type Data, type LdmDocument, type ResponseStatus } from './document.ts';

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

/** Properties a response never echoes back (migrate-domain carries the target's login). */
const SECRET_KEYS = ['password', 'username'];

function redactSecrets(data: Data): void {
  const env = data.envelope;
  if (!env) return;
  for (const section of [...env.sections, ...env.contents.flatMap((c) => c.sections)]) {
    for (const it of section.items) for (const key of SECRET_KEYS) it.props.delete(key);
  }
}

function finishCommand(cmd: Command): void {
  for (const d of cmd.data) redactSecrets(d);
  if (cmd.problem) {
    cmd.response = failure(cmd.problem);
    return;
  }
  let ok = cmd.response?.status !== 'failure';
  for (const d of cmd.data) {
    if (d.problem) d.response = failure(d.problem);
    d.response ??= success();
    if (d.response.status === 'failure') ok = false;
  }
  cmd.response = ok ? (cmd.response ?? success()) : failureKeeping(cmd.response);
}

const failureKeeping = (r: ResponseStatus | undefined): ResponseStatus => failure(...(r?.messages ?? []));
