/** A write user's TLS session with a test agent, and what its responses say. */
import { readFileSync } from 'node:fs';
import type { LdmDocument } from '../../agent/xml/document.ts';
import { LdmClient } from '../../agent/xmpp/client.ts';
import type { TestAgent } from './agent.ts';

export async function adminSession(agent: TestAgent, user = 'admin', password = 'admin-secret'): Promise<LdmClient> {
  return LdmClient.connect({
    host: '127.0.0.1',
    port: agent.port,
    auth: { kind: 'password', user, password },
    ca: readFileSync(agent.certPaths.ca, 'utf8'),
    servername: 'localhost',
  });
}

/** Every resp_msg of every object of the first command, or of the command itself. */
export function messages(doc: LdmDocument): string[] {
  const cmd = doc.commands[0]!;
  return [...cmd.data.flatMap((d) => d.response?.messages ?? []), ...(cmd.response?.messages ?? [])];
}

export const ok = (doc: LdmDocument) => doc.response?.status === 'success';

/** Send a request that must succeed; a refusal throws with its texts. */
export async function mustSucceed(client: LdmClient, text: string): Promise<LdmDocument> {
  const r = await client.request(text);
  if (!ok(r)) throw new Error(`refused: ${messages(r).join('; ')}`);
  return r;
}

/** Send a request that must be refused; returns the refusal texts, joined. */
export async function refusalOf(client: LdmClient, text: string): Promise<string> {
  const r = await client.request(text);
  if (ok(r)) throw new Error('expected a refusal');
  return messages(r).join('; ');
}
