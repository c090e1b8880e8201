// A stand-in for lib/queue/sender-worker.ts that fails as the first body of a call tells it to:
// `hang` blocks the thread for good, `exit` ends it; any other call is answered at once.
import { parentPort } from 'node:worker_threads'
import type { SendCall, SendReply } from '../lib/queue/sender-thread.ts'

parentPort?.on('message', ({ id, bodies }: SendCall) => {
  if (bodies[0] === 'hang') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
  if (bodies[0] === 'exit') process.exit(3)
  parentPort?.postMessage({ id, refused: [] } satisfies SendReply)
})
