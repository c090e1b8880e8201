// The SQS emulator in a process of its own, without its per-request log (fauxqs's CLI forces it
// on). Sends its port to the parent over IPC.
import { startFauxqs } from 'fauxqs'

const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
process.send!(fauxqs.port)
process.once('SIGTERM', () => process.exit(0))
