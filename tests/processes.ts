import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Config } from '../lib/config.ts'

const SERVER_ENTRY = fileURLToPath(new URL('../functions/server.ts', import.meta.url))

/** A port that was free a moment ago. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })

/** The environment that reproduces a Config, for a child process. */
export const toEnv = (config: Config): Record<string, string> =>
  Object.fromEntries(
    Object.entries(config)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [key, String(value)]),
  )

export interface ServerProcess {
  url: string
  child: ChildProcess
  output: () => string
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<number | null>
  /** SIGKILL: no shutdown at all. */
  kill(): Promise<void>
}

/**
 * Starts `node functions/server.ts` in its own process on a port of its own choosing (PORT=0; the
 * server reports the port over IPC), and waits until /health answers. A port picked here and
 * handed over could be taken by another test's process in between, and /health would then answer
 * from that one.
 */
export const startServerProcess = async (
  env: Record<string, string>,
  { timeoutMs = 60_000 } = {},
): Promise<ServerProcess> => {
  let output = ''
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  child.stdout!.on('data', (chunk) => {
    output = (output + chunk).slice(-20_000)
  })
  child.stderr!.on('data', (chunk) => {
    output = (output + chunk).slice(-20_000)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let timer: NodeJS.Timeout | undefined
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { listening?: number }) => {
      if (typeof message?.listening === 'number') resolve(message.listening)
    })
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${output}`)))
    timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not come up in ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
  }).finally(() => clearTimeout(timer))
  child.disconnect()
  const url = `http://127.0.0.1:${port}`
  const res = await fetch(`${url}/health`)
  if (!res.ok) throw new Error(`server on ${url} answered /health with ${res.status}:\n${output}`)
  return {
    url,
    child,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
    kill: async () => {
      child.kill('SIGKILL')
      await exited
    },
  }
}

/** Runs `work` over `items` with at most `limit` at a time. */
export const mapLimit = async <T, R>(
  items: T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
) => {
  const results = new Array<R>(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++
        results[index] = await work(items[index]!, index)
      }
    }),
  )
  return results
}

/** Polls until `check` is true or the time is up. */
export const eventually = async (
  check: () => Promise<boolean>,
  { timeoutMs = 60_000, what = 'condition' } = {},
) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
