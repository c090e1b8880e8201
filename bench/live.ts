// Live streams: fan-out latency and memory per open stream. One server process (`npm start`, with
// its pollers persisting and publishing), 1,000 subscribers over 10 chats in two separate
// processes, and this process writing 500 messages a second through the API. `node bench/live.ts`
// prints the figures; `benchLive()` returns them.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type ClientRequest, request } from 'node:http'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { startSqs } from './sqs.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SELF = fileURLToPath(import.meta.url)

export interface LiveBenchOptions {
  subscribers?: number
  chats?: number
  messagesPerS?: number
  durationS?: number
  /** Reuse a running search engine; otherwise the server indexes into this URL anyway (failures are retried later). */
  elasticsearchUrl?: string
  databaseUrl?: string
  redisUrl?: string
}

export interface LiveBenchFigures {
  subscribers: number
  chats: number
  messages_per_s: number
  duration_s: number
  messages: number
  /** Writes the API did not accept (they are not expected on the streams). */
  write_errors: number
  write_error_kinds: Record<string, number>
  deliveries_expected: number
  deliveries: number
  /** From the append to the chat's log (right after the commit and read-back) to the subscriber. */
  from_commit_p50_ms: number
  from_commit_p99_ms: number
  /** From the API's acceptance (202) to the subscriber: queueing and persistence included. */
  from_accept_p50_ms: number
  from_accept_p99_ms: number
  server_rss_idle_mib: number
  /** Growth of the server's JS heap and external buffers after a full GC, per open stream. */
  js_per_idle_stream_kib: number
  /** Growth of the server's RSS (sockets and all, GC slack included), per open stream. */
  rss_per_idle_stream_kib: number
  /** The same over the second half of the streams only. */
  rss_per_idle_stream_marginal_kib: number
  /**
   * The server's own share, from its `chat_live_delivery_delay_seconds` histogram (append to the
   * write to a stream): the bucket bounds holding p50 and p99, and the share of writes within 250 ms.
   */
  server_write_p50_le_ms: number
  server_write_p99_le_ms: number
  server_writes_within_250_ms: number
  /** CPU time the server process used from the start of the load to the last deliveries. */
  server_cpu_s_during_load: number
  /** The same for the subscriber processes together (the clients' share of the 2 cores). */
  subscribers_cpu_s_during_load: number
}

/** Latencies as counts per whole millisecond: small to send, and exact to merge. */
type Histogram = Record<number, number>

const record = (histogram: Histogram, ms: number) => {
  histogram[ms] = (histogram[ms] ?? 0) + 1
}

const merge = (histograms: Histogram[]) => {
  const merged: Histogram = {}
  for (const histogram of histograms) {
    for (const [ms, count] of Object.entries(histogram))
      merged[Number(ms)] = (merged[Number(ms)] ?? 0) + count
  }
  return merged
}

const countOf = (histogram: Histogram) => Object.values(histogram).reduce((sum, count) => sum + count, 0)

const percentile = (histogram: Histogram, p: number) => {
  const rank = Math.ceil((countOf(histogram) * p) / 100)
  let seen = 0
  for (const ms of Object.keys(histogram)
    .map(Number)
    .sort((a, b) => a - b)) {
    seen += histogram[ms]!
    if (seen >= rank) return ms
  }
  return Number.NaN
}

const rssKiB = async (pid: number) => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1])
}

/** User and system CPU time of a process so far (clock ticks of 1/100 s on Linux). */
const cpuSeconds = async (pid: number) => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Cumulative buckets of a Prometheus histogram in a text exposition, as [upper bound in ms, count]. */
const bucketsOf = (exposition: string, name: string) =>
  [...exposition.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map(
    ([, le, count]) => [le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le) * 1000, Number(count)] as const,
  )

const bucketBound = (buckets: ReadonlyArray<readonly [number, number]>, p: number) => {
  const total = buckets.at(-1)?.[1] ?? 0
  return buckets.find(([, count]) => count >= (total * p) / 100)?.[0] ?? Number.NaN
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Opens one stream with node:http and calls `onEvent` with each message event's id and data: the
 * least a client can do per event, so that the subscribers' CPU weighs as little as possible on the
 * server they share the machine with.
 */
const openStream = (url: string, onEvent: (id: string, data: string) => void) =>
  new Promise<ClientRequest>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream answered ${res.statusCode}`))
        res.resume()
        return
      }
      res.setEncoding('utf8')
      let buffer = ''
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          // `id: <cursor>\nevent: message\ndata: <json>`: pings and the opening `retry:` are skipped.
          if (block.startsWith('id: ') && block.includes('\nevent: message\n')) {
            const firstBreak = block.indexOf('\n')
            onEvent(block.slice(4, firstBreak), block.slice(block.indexOf('\ndata: ') + 7))
          }
          end = buffer.indexOf('\n\n')
        }
      })
      res.on('error', () => undefined)
      resolve(req)
    })
    req.on('error', reject)
    req.end()
  })

/** A subscriber process: opens its streams, says READY, records latencies, reports on 'report'. */
const runSubscribers = async (base: string, token: string, chats: number, count: number, offset: number) => {
  const fromCommit: Histogram = {}
  const fromAccept: Histogram = {}
  const streams: ClientRequest[] = []
  for (let i = 0; i < count; i++) {
    const chat = 1 + ((offset + i) % chats)
    streams.push(
      await openStream(`${base}/applications/${token}/chats/${chat}/messages/stream`, (id, data) => {
        const now = Date.now()
        record(fromCommit, now - Number(id.split('-')[0]))
        record(fromAccept, now - Date.parse((JSON.parse(data) as { created_at: string }).created_at))
      }),
    )
  }
  process.stdout.write('READY\n')
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'report') continue
    for (const stream of streams) stream.destroy()
    // A pipe is written asynchronously: exit only once the report is out.
    process.stdout.write(`${JSON.stringify({ fromCommit, fromAccept })}\n`, () => process.exit(0))
  }
}

const lineOf = (child: ChildProcess, pattern: RegExp) =>
  new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      if (pattern.test(line)) {
        lines.close()
        resolve(line)
      }
    })
    child.once('exit', (code) => reject(new Error(`subscriber process exited with ${code}`)))
  })

const post = async (url: string, body?: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    ...(body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  })
  if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}

/** Runs the live fan-out benchmark against its own server and SQS emulator processes. */
export const benchLive = async (options: LiveBenchOptions = {}): Promise<LiveBenchFigures> => {
  const subscribers = options.subscribers ?? 1_000
  const chats = options.chats ?? 10
  const rate = options.messagesPerS ?? 500
  const durationS = options.durationS ?? 10
  const unique = randomBytes(3).toString('hex')
  const { port: sqsPort, child: fauxqs } = await startSqs()
  const server = spawn(
    process.execPath,
    [
      '--expose-gc',
      ...(process.env.LIVE_BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      'bench/live-server.ts',
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        LOG_LEVEL: 'warn',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL:
          options.databaseUrl ?? process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/chat_bench_live',
        REDIS_URL: options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        REDIS_KEY_PREFIX: `bench-live:${unique}:`,
        ELASTICSEARCH_URL:
          options.elasticsearchUrl ?? process.env.ELASTICSEARCH_URL ?? 'http://127.0.0.1:9200',
        SEARCH_INDEX: `bench-live-${unique}`,
        SQS_ENDPOINT: `http://127.0.0.1:${sqsPort}`,
        SQS_CHATS_QUEUE: `bench-live-chats-${unique}`,
        SQS_MESSAGES_QUEUE: `bench-live-messages-${unique}`,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        WRITE_RATE_LIMIT_PER_S: '0',
        LIVE_STREAMS_PER_APPLICATION: String(subscribers),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const base = `http://127.0.0.1:${(await lineOf(server, /^READY \d+$/)).split(' ')[1]}`
  /** The server's memory after a full collection: JS heap, its external buffers, and RSS (KiB). */
  const memoryKiB = async () => {
    const usage = (await (await fetch(`${base}/bench/memory`)).json()) as NodeJS.MemoryUsage
    return { js: (usage.heapUsed + usage.external) / 1024, rss: await rssKiB(server.pid!) }
  }
  const children: ChildProcess[] = []
  try {
    const { token } = (await post(`${base}/applications`, { name: 'bench-live' })) as { token: string }
    for (let chat = 1; chat <= chats; chat++) await post(`${base}/applications/${token}/chats`)
    for (let chat = 1; chat <= chats; chat++) {
      while (!(await fetch(`${base}/applications/${token}/chats/${chat}`)).ok) await sleep(100)
    }
    // Warm up the write and publish paths, then let the server settle before the idle reading.
    for (let i = 0; i < 200; i++)
      await post(`${base}/applications/${token}/chats/${1 + (i % chats)}/messages`, { body: 'warm-up' })
    await sleep(3_000)
    const before = await memoryKiB()

    // Two subscriber processes, one after the other: the second half's cost is the marginal one,
    // free of what the first streams warmed up (compiled code, grown heap spaces).
    const processes = 2
    const after: Array<{ js: number; rss: number }> = []
    for (let p = 0; p < processes; p++) {
      const count = Math.floor(subscribers / processes) + (p < subscribers % processes ? 1 : 0)
      const offset = String(p * Math.ceil(subscribers / processes))
      const child = spawn(
        process.execPath,
        [SELF, 'subscribe', base, token, String(chats), String(count), offset],
        {
          cwd: ROOT,
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      )
      children.push(child)
      await lineOf(child, /^READY$/)
      await sleep(3_000)
      after.push(await memoryKiB())
    }
    const idle = after.at(-1)!
    const secondHalf = subscribers - Math.ceil(subscribers / processes)
    const cpuBefore = await cpuSeconds(server.pid!)
    const subscriberCpu = () => Promise.all(children.map((child) => cpuSeconds(child.pid!)))
    const subscriberCpuBefore = await subscriberCpu()

    // The load: `rate` messages a second, round robin over the chats, paced every 10 ms.
    const total = rate * durationS
    const started = performance.now()
    const writes: Promise<unknown>[] = []
    let writeErrors = 0
    const writeErrorKinds: Record<string, number> = {}
    for (let sent = 0; sent < total; ) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate))
      for (; sent < due; sent++) {
        const body = { body: `live ${sent}: the quick brown fox jumps over the lazy dog` }
        writes.push(
          post(`${base}/applications/${token}/chats/${1 + (sent % chats)}/messages`, body).catch((error) => {
            writeErrors++
            const kind = String((error as Error).cause ?? (error as Error).message).slice(0, 80)
            writeErrorKinds[kind] = (writeErrorKinds[kind] ?? 0) + 1
          }),
        )
      }
      await sleep(10)
    }
    await Promise.all(writes)
    await sleep(5_000) // the last deliveries
    const serverCpuS = (await cpuSeconds(server.pid!)) - cpuBefore
    const writeDelays = bucketsOf(
      await (await fetch(`${base}/metrics`)).text(),
      'chat_live_delivery_delay_seconds',
    )
    const subscriberCpuS = (await subscriberCpu()).reduce((sum, s, i) => sum + s - subscriberCpuBefore[i]!, 0)

    const reports = await Promise.all(
      children.map((child) => {
        const report = lineOf(child, /^\{/)
        child.stdin!.write('report\n')
        return report.then((line) => JSON.parse(line) as { fromCommit: Histogram; fromAccept: Histogram })
      }),
    )
    const fromCommit = merge(reports.map((r) => r.fromCommit))
    const fromAccept = merge(reports.map((r) => r.fromAccept))
    return {
      subscribers,
      chats,
      messages_per_s: rate,
      duration_s: durationS,
      messages: total - writeErrors,
      write_errors: writeErrors,
      write_error_kinds: writeErrorKinds,
      deliveries_expected: (total - writeErrors) * (subscribers / chats),
      deliveries: countOf(fromCommit),
      from_commit_p50_ms: percentile(fromCommit, 50),
      from_commit_p99_ms: percentile(fromCommit, 99),
      from_accept_p50_ms: percentile(fromAccept, 50),
      from_accept_p99_ms: percentile(fromAccept, 99),
      server_rss_idle_mib: Math.round(idle.rss / 1024),
      js_per_idle_stream_kib: Math.round(((idle.js - before.js) / subscribers) * 10) / 10,
      rss_per_idle_stream_kib: Math.round(((idle.rss - before.rss) / subscribers) * 10) / 10,
      rss_per_idle_stream_marginal_kib: Math.round(((idle.rss - after[0]!.rss) / secondHalf) * 10) / 10,
      server_write_p50_le_ms: bucketBound(writeDelays, 50),
      server_write_p99_le_ms: bucketBound(writeDelays, 99),
      server_writes_within_250_ms:
        Math.round(
          ((writeDelays.find(([le]) => le === 250)?.[1] ?? 0) / (writeDelays.at(-1)?.[1] ?? 1)) * 1000,
        ) / 1000,
      server_cpu_s_during_load: Math.round(serverCpuS * 10) / 10,
      subscribers_cpu_s_during_load: Math.round(subscriberCpuS * 10) / 10,
    }
  } finally {
    for (const child of children) child.kill('SIGTERM')
    server.kill('SIGTERM')
    fauxqs.kill('SIGTERM')
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, ...args] = process.argv.slice(2)
  if (mode === 'subscribe') {
    const [base, token, chats, count, offset] = args as [string, string, string, string, string]
    await runSubscribers(base, token, Number(chats), Number(count), Number(offset))
  } else {
    // `node bench/live.ts --subscribers 10 --rate 100 --seconds 5`: a smaller or larger run.
    const argv = process.argv.slice(2)
    const flag = (name: string) => {
      const at = argv.indexOf(`--${name}`)
      return at >= 0 ? Number(argv[at + 1]) : undefined
    }
    const figures = await benchLive({
      subscribers: flag('subscribers'),
      messagesPerS: flag('rate'),
      durationS: flag('seconds'),
    })
    console.log(
      `live: ${figures.subscribers} subscribers over ${figures.chats} chats, ${figures.messages_per_s} messages/s for ${figures.duration_s} s: ` +
        `${figures.deliveries}/${figures.deliveries_expected} deliveries (${figures.write_errors} failed writes); from commit p50 ${figures.from_commit_p50_ms} ms p99 ${figures.from_commit_p99_ms} ms (target ≤ 250); ` +
        `from accept p50 ${figures.from_accept_p50_ms} ms p99 ${figures.from_accept_p99_ms} ms; ` +
        `server's append → write p50 ≤ ${figures.server_write_p50_le_ms} ms, p99 ≤ ${figures.server_write_p99_le_ms} ms, ${(figures.server_writes_within_250_ms * 100).toFixed(1)} % within 250 ms; ` +
        `per idle stream ${figures.js_per_idle_stream_kib} KiB of JS heap after GC, ${figures.rss_per_idle_stream_kib} KiB of RSS (second half ${figures.rss_per_idle_stream_marginal_kib}; target ≤ 20), server RSS ${figures.server_rss_idle_mib} MiB; CPU during the load: server ${figures.server_cpu_s_during_load} s, subscribers ${figures.subscribers_cpu_s_during_load} s`,
    )
    console.log(JSON.stringify(figures))
  }
}
