// The migration fault matrix, column "cancel": every migration state (test/helpers/matrix.ts
// STATES) struck with cancel-operation migration on the source,
// between two agent processes on loopback. After each case the domain runs on exactly
// one agent, nothing is left on the other, no acknowledged change is lost, and a retry
// succeeds with equal memory digests. Prints its column of the matrix.
import t from 'tap';
import { loopbackMatrix, runColumn } from './helpers/matrix.ts';

t.setTimeout(300_000);
await runColumn(t, await loopbackMatrix(t), 'cancel');
