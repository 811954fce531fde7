/**
 * A response never echoes a secret (issue 13, item 10): properties and rasd elements
 * named `password` or `username` are dropped whatever their case, at every level of an
 * echoed object, the Items inside a bind:Binding included. Spoken over the agent's real
 * Unix socket, and read as the bytes the client receives.
 */
import t from 'tap';
import { startTestAgent } from './helpers/agent.ts';
import { HEADER, RawPeer } from './helpers/raw.ts';
import { request } from './helpers/requests.ts';
import { decodeResponse } from '../agent/xml/decode.ts';

const SECRETS = ['c2VjcmV0LTE=', 'c2VjcmV0LTI=', 'c2VjcmV0LTM=', 'c2VjcmV0LTQ=', 'c2VjcmV0LTU=', 'c2VjcmV0LTY=', 'cm9vdA=='];

const gprop = (key: string, value: string) => `<gprop:GenericProperty key="${key}">${value}</gprop:GenericProperty>`;

/** A migrate-domain object carrying the target's login in every spelling and place. */
const login =
  `<data version="3.0"><Envelope><References/>` +
  `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"><Section xsi:type="ovf:ResourceAllocationSection_Type">` +
  `<Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>` +
  gprop('target', 't4-b') +
  gprop('Password', SECRETS[0]!) +
  gprop('USERNAME', SECRETS[6]!) +
  `<rasd:Password>${SECRETS[1]}</rasd:Password>` +
  `<bind:Binding><Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>` +
  gprop('password', SECRETS[2]!) +
  gprop('PassWord', SECRETS[3]!) +
  gprop('note', 'kept') +
  `</Item></bind:Binding></Item>` +
  `</Section></Content>` +
  `<Section xsi:type="ovf:ResourceAllocationSection_Type"><Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>` +
  gprop('pASSWORD', SECRETS[4]!) +
  gprop('UserName', SECRETS[5]!) +
  `</Item></Section>` +
  `</Envelope></data>`;

t.test('a response echoes no password or username, whatever its case or depth', async (t) => {
  const agent = await startTestAgent(t);
  const peer = await RawPeer.unix(agent.unixPath);
  t.teardown(() => peer.destroy());
  peer.write(HEADER);
  await peer.until(/<\/stream:features>/);
  const mark = peer.text.length;
  for (const action of ['migrate-domain', 'set-domain', 'list-domain']) peer.write(request(action, login));
  const answer = await peer.until(/(<\/LDM_interface>[\s\S]*){3}/, 5000, mark);
  const docs = answer.split('</LDM_interface>').slice(0, 3);
  t.equal(docs.length, 3, 'three answers');
  for (const doc of docs) {
    const text = doc + '</LDM_interface>';
    for (const secret of SECRETS) t.notOk(text.includes(secret), `${secret} is not echoed`);
    t.notMatch(text, /key="(password|username)"/i, 'no secret key at all');
    t.notMatch(text, /rasd:password/i, 'nor a rasd element named so');
    const decoded = decodeResponse(text.slice(text.indexOf('<LDM_interface')));
    const echoed = JSON.stringify(decoded.commands[0]!.data.map((d) => d.envelope), (_k, v: unknown) => (v instanceof Map ? [...v] : v));
    if (echoed.includes('t4-b')) t.match(echoed, /"note","kept"/, 'what is not secret is echoed, the binding included');
  }
  // At least the refused changes echo their object (listings answer with what they list).
  t.match(docs[0], /t4-b/, 'migrate-domain echoes its object');
});
