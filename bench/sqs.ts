// The SQS emulator in a process of its own, without its per-request log (fauxqs's CLI forces it
// on). It listens on a port of its own choosing and sends it to the parent over IPC: a port picked
// by the parent and handed over could be taken by another process before the emulator bound it.
// `startSqs()` starts it and waits for that port.
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const startSqs = () => {
  const child = fork(fileURLToPath(import.meta.url), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  return new Promise<{ port: number; child: ChildProcess }>((resolve, reject) => {
    child.once('message', (port) => resolve({ port: Number(port), child }))
    child.once('exit', (code) => reject(new Error(`the SQS emulator exited with ${code}`)))
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startFauxqs } = await import('fauxqs')
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
  process.send!(fauxqs.port)
  process.once('SIGTERM', () => process.exit(0))
}
