/**
 * Structural validation of an LDM document, reporting every problem with its
 * line: the checks our decoder makes, gathered instead of answered. Schema
 * validation (schemas/*.xsd) is layered on top by the `validate` command.
 */
import { XmlError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import { decodeTree, type DocumentKind } from './decode.ts';
import type { RootName } from './document.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from './limits.ts';
import { parseXml, type XmlElement } from './tree.ts';

export interface Problem {
  line: number;
  reason: string;
}

export interface StructureReport {
  /** The root element, when the document parsed at all. */
  root?: RootName;
  problems: Problem[];
}

function kindOf(root: XmlElement): DocumentKind | undefined {
  if (root.local === 'ldm_event') return 'event';
  if (root.local !== 'ldm_interface') return undefined;
  return root.children.some((c) => c.local === 'response') ? 'response' : 'request';
}

export function checkStructure(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): StructureReport {
  let root: XmlElement;
  try {
    root = parseXml(text, limits);
  } catch (err) {
    if (err instanceof XmlError) return { problems: [{ line: err.line ?? 1, reason: err.message }] };
    throw err;
  }
  const kind = kindOf(root);
  if (!kind) {
    return { problems: [{ line: root.line, reason: xmlMessages.wrongRoot(root.name, 'LDM_interface or LDM_event') }] };
  }
  const rootName: RootName = kind === 'event' ? 'LDM_event' : 'LDM_interface';
  try {
    // Only requests must name known actions: a response echoes whatever it was asked (an unknown
    // action's failure included), and events name what happened (add-crypto, ...).
    const doc = decodeTree(root, kind);
    const problems: Problem[] = [];
    for (const cmd of doc.commands) {
      const line = cmd.line ?? root.line;
      if (cmd.problem) problems.push({ line, reason: cmd.problem });
      for (const d of cmd.data) if (d.problem) problems.push({ line: d.line ?? line, reason: d.problem });
    }
    return { root: rootName, problems };
  } catch (err) {
    if (err instanceof XmlError) return { root: rootName, problems: [{ line: err.line ?? root.line, reason: err.message }] };
    throw err;
  }
}
