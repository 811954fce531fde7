import t from 'tap';
import { decodeRequest } from '../agent/xml/decode.ts';
t.test('decodes', async (t) => {
  const d = decodeRequest('<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>');
  t.equal(d.commands[0]?.action, 'list-domain');
});
