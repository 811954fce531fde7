// The migration fault matrix, column "cut": the two agents run in network namespaces of
// their own (test/helpers/netns.ts), joined through a switch namespace; in every migration
// state (test/helpers/matrix.ts STATES) the switch's ports go down, the held agent is let
// run into the dead network, and once the source has given up the ports come up again. After each
// case the domain runs on exactly one agent, nothing is left on the other, no
// acknowledged change is lost, and a retry succeeds with equal memory digests. Prints
// its column of the matrix. Skipped, with the reason, where namespaces cannot be made.
import t from 'tap';
import { netnsMatrix, runColumn } from './helpers/matrix.ts';
import { makeNetnsPair, netnsUnavailable } from './helpers/netns.ts';

const unavailable = netnsUnavailable();
if (unavailable) {
  t.test('the cut column of the matrix', { skip: `it needs network namespaces: ${unavailable}` }, () => {});
} else {
  t.setTimeout(300_000);
  const pair = makeNetnsPair();
  // After the agents' own teardown (registered later, run first): the namespaces go last.
  t.teardown(() => pair.remove());
  await runColumn(t, await netnsMatrix(t, pair), 'cut');
}
