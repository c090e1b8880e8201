// What metrics cost on the hot path: POST message throughput with METRICS_ENABLED=true against the
// same server with METRICS_ENABLED=false (the baseline), each in its own process, loaded in turn
// (off, on, off, on…) so that both see the same machine. Plus the cost of one recordRequest call.
// Alone: `node bench/metrics-cost.ts`; from bench/run.ts: `await benchMetricsCost()`.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { recordRequest } from '../lib/metrics.ts'
import { freePort } from '../tests/processes.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface MetricsCost {
  /** Mean req/s over the rounds, metrics off (the baseline) and on. */
  off_requests_per_s: number
  on_requests_per_s: number
  /** on / off: 1 means free; the target is at least 0.95. */
  ratio: number
  rounds: Array<{ off: number; on: number }>
  /** One recordRequest call on a warm route, in nanoseconds. */
  record_request_ns: number
}

const spawnNode = (args: string[], env: Record<string, string>) =>
  spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })

const portOf = (child: ChildProcess) =>
  new Promise<number>((resolve, reject) => {
    let buffer = ''
    child.stdout!.on('data', (chunk) => {
      buffer += chunk
      const match = buffer.match(/READY (\d+)/)
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buffer}`)))
  })

const recordRequestNs = () => {
  const calls = 1_000_000
  for (let i = 0; i < 10_000; i++) recordRequest('POST', '/bench/:token/messages', 202, 1.5)
  const started = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) recordRequest('POST', '/bench/:token/messages', 202, i % 50)
  return Math.round(Number(process.hrtime.bigint() - started) / calls)
}

/** Runs the comparison and prints one line per round and a summary. */
export const benchMetricsCost = async ({
  durationS = Number(process.env.BENCH_DURATION_S ?? 10),
  connections = 100,
  rounds = 2,
} = {}): Promise<MetricsCost> => {
  const unique = randomBytes(3).toString('hex')
  const sqsPort = await freePort()
  const fauxqs = spawnNode(['node_modules/fauxqs/dist/cli.js'], {
    FAUXQS_PORT: String(sqsPort),
    FAUXQS_LOGGER: 'false',
  })
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  const env = {
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    RUN_WORKERS: 'false',
    WRITE_RATE_LIMIT_PER_S: '0',
    SQS_ENDPOINT: `http://127.0.0.1:${sqsPort}`,
    SQS_CHATS_QUEUE: `bench-metrics-chats-${unique}`,
    SQS_MESSAGES_QUEUE: `bench-metrics-messages-${unique}`,
    REDIS_KEY_PREFIX: `bench:${unique}:`,
    SEARCH_INDEX: `bench-metrics-${unique}`,
    DATABASE_URL: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/chat_bench_http',
  }
  const servers = {
    off: spawnNode(['bench/server.ts'], { ...env, METRICS_ENABLED: 'false' }),
    on: spawnNode(['bench/server.ts'], { ...env, METRICS_ENABLED: 'true' }),
  }
  try {
    const bases = {
      off: `http://127.0.0.1:${await portOf(servers.off)}`,
      on: `http://127.0.0.1:${await portOf(servers.on)}`,
    }
    const messageUrls = { off: '', on: '' }
    for (const mode of ['off', 'on'] as const) {
      const res = await fetch(`${bases[mode]}/applications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `metrics ${mode}` }),
      })
      const { token } = (await res.json()) as { token: string }
      await fetch(`${bases[mode]}/applications/${token}/chats`, { method: 'POST' })
      messageUrls[mode] = `${bases[mode]}/applications/${token}/chats/1/messages`
    }
    const load = async (mode: 'off' | 'on', seconds: number) => {
      let i = 0
      const result = await autocannon({
        url: messageUrls[mode],
        method: 'POST',
        connections,
        duration: seconds,
        headers: { 'content-type': 'application/json' },
        requests: [
          {
            setupRequest: (request: autocannon.Request) => ({
              ...request,
              body: JSON.stringify({ body: `message ${i++}: the quick brown fox jumps over the lazy dog` }),
            }),
          },
        ],
      })
      if (result.non2xx + result.errors > 0)
        throw new Error(`${mode}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      return Math.round(result.requests.average)
    }
    // Warm up both (JIT, pools, queues), then measure in turns.
    await load('off', 2)
    await load('on', 2)
    const measured: MetricsCost['rounds'] = []
    for (let round = 1; round <= rounds; round++) {
      const off = await load('off', durationS)
      const on = await load('on', durationS)
      measured.push({ off, on })
      console.log(`metrics cost, round ${round}: off ${off} req/s, on ${on} req/s (${(on / off).toFixed(3)})`)
    }
    const mean = (values: number[]) =>
      Math.round(values.reduce((sum, value) => sum + value, 0) / values.length)
    const off = mean(measured.map((round) => round.off))
    const on = mean(measured.map((round) => round.on))
    const cost: MetricsCost = {
      off_requests_per_s: off,
      on_requests_per_s: on,
      ratio: Math.round((on / off) * 1000) / 1000,
      rounds: measured,
      record_request_ns: recordRequestNs(),
    }
    console.log(
      `metrics cost: POST message ${on} req/s with metrics, ${off} without: ratio ${cost.ratio} (target ≥ 0.95); one recordRequest ${cost.record_request_ns} ns`,
    )
    return cost
  } finally {
    servers.off.kill('SIGTERM')
    servers.on.kill('SIGTERM')
    fauxqs.kill('SIGTERM')
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await benchMetricsCost()
  process.exit(0)
}
