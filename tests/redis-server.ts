import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './processes.ts'

export interface RedisServer {
  url: string
  port: number
  dir: string
  /** A plain client (no prefix) for arranging the fault: CONFIG SET, filling, inspecting. */
  admin: Redis
  stop(): Promise<void>
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => resolve(socket.destroy() && true))
    socket.once('error', () => resolve(false))
  })

/**
 * A private `redis-server` on a free port, in a directory of its own, for injecting faults that
 * must never reach the shared Redis other tests use (maxmemory, replica mode, loading).
 */
export const startRedisServer = async (
  args: string[] = [],
  { dir, port }: { dir?: string; port?: number } = {},
): Promise<RedisServer> => {
  const home = dir ?? (await mkdtemp(join(tmpdir(), 'redis-fault-')))
  const listen = port ?? (await freePort())
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(listen),
      '--bind',
      '127.0.0.1',
      '--dir',
      home,
      '--save',
      '',
      '--appendonly',
      'no',
      ...args,
    ],
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  for (let waited = 0; !(await accepts(listen)); waited += 20) {
    if (waited > 5_000 || child.exitCode !== null) throw new Error('redis-server did not start')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const admin = new Redis(listen, '127.0.0.1', { maxRetriesPerRequest: 0, enableReadyCheck: false })
  return {
    url: `redis://127.0.0.1:${listen}`,
    port: listen,
    dir: home,
    admin,
    stop: async () => {
      admin.disconnect()
      child.kill('SIGKILL')
      await exited
      if (!dir) await rm(home, { recursive: true, force: true })
    },
  }
}
