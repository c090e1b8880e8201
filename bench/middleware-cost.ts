// What each piece of the request path costs, each server in its own process, against bare Hono's
// JSON POST (bench/baseline.ts) measured in the same run: loads alternate in rounds (the order
// rotating), autocannon in its own process (bench/load.ts), 100 connections. Besides req/s, the
// servers' own CPU time per request answered (user + system, from /proc: it does not count time
// spent waiting for a core, so it is steadier than req/s on a shared machine), and for the creates
// the CPU that the SQS emulator and Redis spent per create.
//
//   node bench/middleware-cost.ts [--rounds 3] [--seconds 4] [--only noop|creates]
//
// Loads: bare Hono; bench/middleware-server.ts with PIECES=validate, context, context-log; the
// server as `npm start` runs it (bench/server.ts: /bench/noop, POST …/chats, POST …/messages).
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { openSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { migrateDatabase } from '../lib/db.ts'
import type { Figures, LoadSpec } from './load.ts'
import { benchBody } from './persistence.ts'
import { cpuMsOf, pidsOf } from './proc.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const { values: options } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    only: { type: 'string' },
    // Another checkout (git archive of a base commit, its node_modules linked): its server is
    // loaded the same way, in the same rounds, for a before/after in one run.
    base: { type: 'string' },
  },
})
const ROUNDS = Number(options.rounds)
const SECONDS = Number(options.seconds)
const logFd = openSync(join(os.tmpdir(), `bench-middleware-${process.pid}.log`), 'w')

const start = (script: string, env: Record<string, string> = {}, args: string[] = [], root = ROOT) =>
  fork(join(root, script), args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', logFd, 'inherit', 'ipc'],
  })
const firstMessage = <T>(child: ChildProcess) =>
  new Promise<T>((resolve, reject) => {
    child.once('message', (message) => resolve(message as T))
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.join(' ')} exited with ${code}`)))
  })

const redisPid = pidsOf('-x', 'redis-server')[0]

interface Load {
  name: string
  spec: Omit<LoadSpec, 'connections' | 'durationS'>
  server: ChildProcess
  /** Other processes whose CPU per request is worth reporting. */
  others?: Record<string, number | undefined>
}
interface Round extends Figures {
  cpu_us: number
  others: Record<string, number>
}

const run = async () => {
  const unique = randomBytes(3).toString('hex')
  const children: ChildProcess[] = []
  const spawn = async (script: string, env: Record<string, string> = {}, root = ROOT) => {
    const child = start(script, env, [], root)
    children.push(child)
    return { child, url: `http://127.0.0.1:${await firstMessage<number>(child)}` }
  }
  try {
    const sqs = await spawn('bench/sqs.ts')
    const env = {
      ELASTICSEARCH_URL: process.env.ELASTICSEARCH_URL ?? 'http://127.0.0.1:9',
      SEARCH_INDEX: `bench-mw-${unique}`,
      PORT: '0',
      HOST: '127.0.0.1',
      RUN_WORKERS: 'false',
      WRITE_RATE_LIMIT_PER_S: '0',
      SQS_ENDPOINT: sqs.url,
      SQS_CHATS_QUEUE: `bench-mw-chats-${unique}`,
      SQS_MESSAGES_QUEUE: `bench-mw-messages-${unique}`,
      REDIS_KEY_PREFIX: `bench-mw:${unique}:`,
      DATABASE_URL: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/chat_bench_http',
    }
    await migrateDatabase(env.DATABASE_URL)
    const bare = await spawn('bench/baseline.ts', env)
    const noop = { method: 'POST' as const, body: '{"body":"hello, world"}' }
    const loads: Load[] = [
      { name: 'bare Hono JSON POST', spec: { url: `${bare.url}/noop`, ...noop }, server: bare.child },
    ]
    if (options.only !== 'creates' && options.only !== 'servers') {
      for (const pieces of ['validate', 'context', 'context-log']) {
        const server = await spawn('bench/middleware-server.ts', { PIECES: pieces })
        loads.push({
          name: `pieces: ${pieces}`,
          spec: { url: `${server.url}/noop`, ...noop },
          server: server.child,
        })
      }
    }
    const servers: Array<[string, string]> = [['', ROOT]]
    if (options.base) servers.unshift(['base ', options.base])
    for (const [label, root] of servers) {
      const project = await spawn(
        'bench/server.ts',
        { ...env, REDIS_KEY_PREFIX: `${env.REDIS_KEY_PREFIX}${label.trim()}:` },
        root,
      )
      if (options.only !== 'creates')
        loads.push({
          name: `${label}server: /bench/noop`,
          spec: { url: `${project.url}/bench/noop`, ...noop },
          server: project.child,
        })
      if (options.only === 'noop') continue
      const post = async (path: string, body: unknown) =>
        (await (
          await fetch(`${project.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          })
        ).json()) as { token: string }
      const { token } = await post('/applications', { name: 'bench middleware' })
      await post(`/applications/${token}/chats`, {})
      const others = { fauxqs: sqs.child.pid, redis: redisPid }
      loads.push(
        {
          name: `${label}server: POST …/chats`,
          spec: {
            url: `${project.url}/applications/${token}/chats`,
            method: 'POST',
            body: '{"title":"bench"}',
          },
          server: project.child,
          others,
        },
        {
          name: `${label}server: POST …/messages`,
          spec: {
            url: `${project.url}/applications/${token}/chats/1/messages`,
            method: 'POST',
            body: JSON.stringify({ body: benchBody(42) }),
          },
          server: project.child,
          others,
        },
      )
    }
    const load = async (item: Load, durationS: number): Promise<Round> => {
      const pids = { server: item.server.pid, ...item.others }
      const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMsOf(pid)]))
      const figures = await firstMessage<Figures>(
        start('bench/load.ts', {}, [JSON.stringify({ connections: 100, durationS, ...item.spec })]),
      )
      const per = (k: string) =>
        Math.round(
          ((cpuMsOf(pids[k as keyof typeof pids]) - before[k]!) * 1000) / Math.max(1, figures.accepted),
        )
      return {
        ...figures,
        cpu_us: per('server'),
        others: Object.fromEntries(Object.keys(item.others ?? {}).map((k) => [k, per(k)])),
      }
    }
    console.log(
      `load average ${os
        .loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')}; ${ROUNDS} rounds of ${SECONDS} s`,
    )
    for (const item of loads) await load(item, 2) // warm-up
    const rounds: Round[][] = loads.map(() => [])
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < loads.length; k++) {
        const index = (k + round) % loads.length
        rounds[index]!.push(await load(loads[index]!, SECONDS))
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length
    const bareRps = mean(rounds[0]!.map((r) => r.requests_per_s))
    const bareCpu = median(rounds[0]!.map((r) => r.cpu_us))
    for (const [index, item] of loads.entries()) {
      const figures = rounds[index]!
      const rps = mean(figures.map((r) => r.requests_per_s))
      const cpu = median(figures.map((r) => r.cpu_us))
      const ratios = figures.map((r, i) => r.requests_per_s / rounds[0]![i]!.requests_per_s)
      const others = Object.keys(figures[0]!.others)
        .map((k) => `${k} ${median(figures.map((r) => r.others[k]!))} µs`)
        .join(', ')
      const bad = figures.reduce((s, r) => s + r.errors + r.non_2xx, 0)
      console.log(
        `${item.name.padEnd(30)} ${String(Math.round(rps)).padStart(6)} req/s (×${(rps / bareRps).toFixed(2)}, rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})  p99 ${median(figures.map((r) => r.p99_ms))} ms  CPU ${cpu} µs/req (×${(cpu / bareCpu).toFixed(2)})${others ? `  per request: ${others}` : ''}${bad ? `  errors/non-2xx ${bad}` : ''}`,
      )
    }
    console.log(
      `load average at the end ${os
        .loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')}`,
    )
  } finally {
    for (const child of children) child.kill('SIGTERM')
  }
}

await run()
process.exit(0)
