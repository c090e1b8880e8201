// What metrics cost on the hot path: POST message throughput with METRICS_ENABLED=true against the
// same server with METRICS_ENABLED=false (the baseline), each in its own process, loaded in turn
// (off then on, on then off, …) so that both see the same machine. On a shared machine throughput
// swings with the neighbours' load, so the servers' own CPU time per request is compared as well
// (it does not count time spent waiting for a core), each as the median of the rounds' ratios with
// their spread. The spread says how much to trust a run: on a busy machine even two identical
// servers differ by ±15 % a round. Last, the one figure noise cannot blur: the CPU time of the
// per-request hook itself (recordRequest), as a share of the baseline's CPU time per request.
// Alone: `node bench/metrics-cost.ts`; from bench/run.ts: `await benchMetricsCost()`.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { recordRequest } from '../lib/metrics.ts'
import { startSqs } from './sqs.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface MetricsCost {
  /** Mean req/s over the rounds, metrics off (the baseline) and on. */
  off_requests_per_s: number
  on_requests_per_s: number
  /** Median of the rounds' on / off throughput: 1 means free; the target is at least 0.95. */
  ratio: number
  ratio_spread: [min: number, max: number]
  /** The server process's CPU time (user + system) per request answered, in microseconds. */
  off_cpu_us_per_request: number
  on_cpu_us_per_request: number
  /** Median of the rounds' on / off CPU per request: 1 means free; the target is at most 1.05. */
  cpu_ratio: number
  cpu_ratio_spread: [min: number, max: number]
  rounds: Array<{ off: Load; on: Load }>
  /** One recordRequest call on a warm route, in nanoseconds. */
  record_request_ns: number
  /** That call's share of the baseline's CPU time per request. */
  hook_share: number
}

interface Load {
  requests_per_s: number
  cpu_us_per_request: number
}

// Linux: utime and stime of /proc/<pid>/stat, in clock ticks of 10 ms.
const cpuMsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const spawnNode = (args: string[], env: Record<string, string>) =>
  spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })

/** bench/server.ts sends the port it listens on over IPC. */
const portOf = (child: ChildProcess) =>
  new Promise<number>((resolve, reject) => {
    child.once('message', (port) => resolve(Number(port)))
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
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
  rounds = 4,
} = {}): Promise<MetricsCost> => {
  const unique = randomBytes(3).toString('hex')
  const { port: sqsPort, child: fauxqs } = await startSqs()
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
  // One after the other: both migrate the same database at start.
  const servers: Partial<Record<'off' | 'on', ChildProcess>> = {}
  try {
    const bases = { off: '', on: '' }
    for (const mode of ['off', 'on'] as const) {
      servers[mode] = spawnNode(['bench/server.ts'], { ...env, METRICS_ENABLED: String(mode === 'on') })
      bases[mode] = `http://127.0.0.1:${await portOf(servers[mode])}`
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
    const load = async (mode: 'off' | 'on', seconds: number): Promise<Load> => {
      let i = 0
      const cpuBefore = cpuMsOf(servers[mode]!.pid!)
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
      const answered = result['2xx']
      return {
        requests_per_s: Math.round(result.requests.average),
        cpu_us_per_request: Math.round(((cpuMsOf(servers[mode]!.pid!) - cpuBefore) * 1000) / answered),
      }
    }
    // Warm up both (JIT, pools, queues), then measure in turns.
    await load('off', 2)
    await load('on', 2)
    const measured: MetricsCost['rounds'] = []
    for (let round = 1; round <= rounds; round++) {
      const [first, second] = round % 2 === 1 ? (['off', 'on'] as const) : (['on', 'off'] as const)
      const figures = { [first]: await load(first, durationS), [second]: await load(second, durationS) }
      const { off, on } = figures as { off: Load; on: Load }
      measured.push({ off, on })
      console.log(
        `metrics cost, round ${round}: off ${off.requests_per_s} req/s ${off.cpu_us_per_request} µs CPU/req, on ${on.requests_per_s} req/s ${on.cpu_us_per_request} µs CPU/req`,
      )
    }
    const mean = (mode: 'off' | 'on', field: keyof Load) =>
      Math.round(measured.reduce((sum, round) => sum + round[mode][field], 0) / measured.length)
    const ratios = (field: keyof Load) => measured.map((round) => round.on[field] / round.off[field])
    const round3 = (value: number) => Math.round(value * 1000) / 1000
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b)
      const middle = sorted.length / 2
      return round3(
        Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!,
      )
    }
    const spread = (values: number[]): [number, number] => [
      round3(Math.min(...values)),
      round3(Math.max(...values)),
    ]
    const recordNs = recordRequestNs()
    const cost: MetricsCost = {
      off_requests_per_s: mean('off', 'requests_per_s'),
      on_requests_per_s: mean('on', 'requests_per_s'),
      ratio: median(ratios('requests_per_s')),
      ratio_spread: spread(ratios('requests_per_s')),
      off_cpu_us_per_request: mean('off', 'cpu_us_per_request'),
      on_cpu_us_per_request: mean('on', 'cpu_us_per_request'),
      cpu_ratio: median(ratios('cpu_us_per_request')),
      cpu_ratio_spread: spread(ratios('cpu_us_per_request')),
      rounds: measured,
      record_request_ns: recordNs,
      hook_share: Math.round((recordNs / (mean('off', 'cpu_us_per_request') * 1000)) * 100_000) / 100_000,
    }
    console.log(
      [
        `metrics cost: POST message ${cost.on_requests_per_s} req/s with metrics, ${cost.off_requests_per_s} without:`,
        `ratio ${cost.ratio} (rounds ${cost.ratio_spread.join('–')}; target ≥ 0.95);`,
        `CPU per request ${cost.on_cpu_us_per_request} µs against ${cost.off_cpu_us_per_request} µs:`,
        `ratio ${cost.cpu_ratio} (rounds ${cost.cpu_ratio_spread.join('–')}; target ≤ 1.05);`,
        `the per-request hook ${cost.record_request_ns} ns, ${(cost.hook_share * 100).toFixed(3)} % of a request's CPU`,
      ].join(' '),
    )
    return cost
  } finally {
    servers.off?.kill('SIGTERM')
    servers.on?.kill('SIGTERM')
    fauxqs.kill('SIGTERM')
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await benchMetricsCost()
  process.exit(0)
}
