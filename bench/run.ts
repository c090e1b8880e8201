// `npm run bench`: one run on this machine. The server runs in its own process (as `npm start`
// does, pollers off so that the figures are the request path's), the SQS emulator in another,
// the search engine in a JVM, and the load generator (autocannon, 100 connections) here. Prints figures and ratios to the
// framework's ceiling, then writes bench/results.json and the tables in BENCHMARKS.md.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { startWorkers } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { silentLogger } from '../lib/logger.ts'
import { startSearchEngine } from '../scripts/search-engine/start.ts'
import { freePort } from '../tests/processes.ts'
import { benchReconcile } from './reconcile.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10)
const CONNECTIONS = 100

const waitForLine = (child: ChildProcess, pattern: RegExp) =>
  new Promise<RegExpMatchArray>((resolve, reject) => {
    let buffer = ''
    child.stdout!.on('data', (chunk) => {
      buffer += chunk
      const match = buffer.match(pattern)
      if (match) resolve(match)
    })
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}: ${buffer}`)))
  })

const startProcess = (args: string[], env: Record<string, string>) =>
  spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })

interface Figures {
  accepted: number
  requests_per_s: number
  p50_ms: number
  p99_ms: number
  errors: number
  non_2xx: number
}

const load = async (
  title: string,
  url: string,
  body?: (i: number) => string,
  connections = CONNECTIONS,
): Promise<Figures> => {
  let i = 0
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration: DURATION_S,
    headers: { 'content-type': 'application/json' },
    ...(body && {
      requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, body: body(i++) }) }],
    }),
  })
  const figures = {
    accepted: result['2xx'],
    requests_per_s: Math.round(result.requests.average),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non_2xx: result.non2xx,
  }
  console.log(
    `${title.padEnd(28)} ${String(figures.requests_per_s).padStart(7)} req/s  p50 ${figures.p50_ms} ms  p99 ${figures.p99_ms} ms  errors ${figures.errors}  non-2xx ${figures.non_2xx}`,
  )
  return figures
}

const run = async () => {
  const unique = randomBytes(3).toString('hex')
  const sqsPort = await freePort()
  const fauxqs = startProcess(['node_modules/fauxqs/dist/cli.js'], {
    FAUXQS_PORT: String(sqsPort),
    FAUXQS_LOGGER: 'false',
  })
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  // The consumers index into the search engine: the persistence figure includes it.
  const engine = process.env.ELASTICSEARCH_URL ? undefined : await startSearchEngine()
  const env = {
    ELASTICSEARCH_URL: process.env.ELASTICSEARCH_URL ?? engine!.url,
    SEARCH_INDEX: `bench-messages-${unique}`,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    RUN_WORKERS: 'false',
    WRITE_RATE_LIMIT_PER_S: '0', // one application takes the whole load here
    SQS_ENDPOINT: `http://127.0.0.1:${sqsPort}`,
    SQS_CHATS_QUEUE: `bench-chats-${unique}`,
    SQS_MESSAGES_QUEUE: `bench-messages-${unique}`,
    REDIS_KEY_PREFIX: `bench:${unique}:`,
    DATABASE_URL: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/chat_bench_http',
  }
  const server = startProcess(['bench/server.ts'], env)
  const [, port] = await waitForLine(server, /READY (\d+)/)
  const base = `http://127.0.0.1:${port}`

  try {
    const app = (await (
      await fetch(`${base}/applications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bench' }),
      })
    ).json()) as { token: string }
    for (let chat = 0; chat < 10; chat++)
      await fetch(`${base}/applications/${app.token}/chats`, { method: 'POST' })

    // Warm up the JIT and the pools, then measure.
    await autocannon({
      url: `${base}/bench/noop`,
      method: 'POST',
      connections: 20,
      duration: 2,
      body: '{"body":"x"}',
      headers: { 'content-type': 'application/json' },
    })
    const ceiling = await load(
      'framework ceiling (no-op POST)',
      `${base}/bench/noop`,
      () => '{"body":"hello, world"}',
    )
    const chats = await load(
      'POST chat',
      `${base}/applications/${app.token}/chats`,
      () => '{"title":"bench"}',
    )
    const messages = await load(
      'POST message (10 chats)',
      `${base}/applications/${app.token}/chats/1/messages`,
      (i) => JSON.stringify({ body: `message ${i}: the quick brown fox jumps over the lazy dog` }),
    )

    // The same request with little queueing: the latency of the path itself.
    const messagesLight = await load(
      'POST message, 10 connections',
      `${base}/applications/${app.token}/chats/2/messages`,
      (i) => JSON.stringify({ body: `message ${i}: the quick brown fox jumps over the lazy dog` }),
      10,
    )

    // Persistence: drain what the load queued with the real consumers, pollers in this process.
    const config = loadConfig({ ...env, RUN_WORKERS: 'true', SQS_POLLERS: '4' })
    const deps = createDeps(config, { logger: silentLogger })
    const queued = chats.accepted + messages.accepted + messagesLight.accepted
    const started = performance.now()
    const workers = await startWorkers(deps)
    while ((await deps.inFlightJobs()) > 0) await new Promise((resolve) => setTimeout(resolve, 100))
    const drainMs = performance.now() - started
    await workers.stop()
    await deps.close()
    const persistence = {
      jobs: queued,
      ms: Math.round(drainMs),
      jobs_per_s: Math.round((queued / drainMs) * 1000),
    }
    console.log(
      `persistence: ${queued} jobs drained in ${persistence.ms} ms (${persistence.jobs_per_s} jobs/s)`,
    )

    const reconcile = await benchReconcile()
    console.log(
      `reconcile: full ${reconcile.full_ms} ms, incremental ${reconcile.incremental_ms} ms (${reconcile.chats} chats, ${reconcile.messages} messages)`,
    )

    const ratio = (f: Figures) => Math.round((f.requests_per_s / ceiling.requests_per_s) * 100) / 100
    const results: Results = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model,
        memory_gib: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      ceiling,
      create_chat: { ...chats, ratio_to_ceiling: ratio(chats) },
      create_message: { ...messages, ratio_to_ceiling: ratio(messages) },
      create_message_10_connections: messagesLight,
      persistence,
      reconcile,
    }
    console.log(
      `ratios to the ceiling: chat ${results.create_chat.ratio_to_ceiling}, message ${results.create_message.ratio_to_ceiling} (target ≥ 0.5, p99 ≤ 25 ms)`,
    )
    await writeFile(new URL('results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
    await writeBenchmarksMd(results)
  } finally {
    server.kill('SIGTERM')
    fauxqs.kill('SIGTERM')
    await engine?.stop()
  }
}

interface Results {
  date: string
  machine: { cpus: number; model?: string; memory_gib: number; node: string }
  connections: number
  duration_s: number
  ceiling: Figures
  create_chat: Figures & { ratio_to_ceiling: number }
  create_message: Figures & { ratio_to_ceiling: number }
  create_message_10_connections: Figures
  persistence: { jobs: number; ms: number; jobs_per_s: number }
  reconcile: { full_ms: number; incremental_ms: number; chats: number; messages: number }
}

const writeBenchmarksMd = async (r: Results) => {
  const path = new URL('../BENCHMARKS.md', import.meta.url)
  const row = (name: string, f: Figures & { ratio_to_ceiling?: number }) =>
    `| ${name} | ${f.requests_per_s} | ${f.p50_ms} | ${f.p99_ms} | ${f.ratio_to_ceiling ?? '–'} | ${f.errors + f.non_2xx} |`
  const generated = [
    '<!-- bench:start (written by `npm run bench`; edit outside these markers) -->',
    `Run of ${r.date} on ${r.machine.cpus} cores (${r.machine.model}), ${r.machine.memory_gib} GiB, Node ${r.machine.node}; ${r.connections} connections, ${r.duration_s} s each.`,
    '',
    '| load (100 connections unless said) | req/s | p50 ms | p99 ms | ratio to ceiling | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('framework ceiling: no-op POST, same server and middleware', { ...r.ceiling, ratio_to_ceiling: 1 }),
    row('POST /applications/:token/chats', r.create_chat),
    row('POST /applications/:token/chats/:chat/messages', r.create_message),
    row('the same, 10 connections (latency of the path itself)', r.create_message_10_connections),
    '',
    `Persistence: the ${r.persistence.jobs} jobs accepted above drained by the consumers (4 pollers, one process; MySQL upserts and bulk indexing) in ${r.persistence.ms} ms: ${r.persistence.jobs_per_s} jobs/s.`,
    '',
    '| reconcile (10,000 chats, 1,000,000 messages) | ms |',
    '| --- | ---: |',
    `| full sweep, every count wrong | ${r.reconcile.full_ms} |`,
    `| incremental, after 1,000 new messages over 100 chats | ${r.reconcile.incremental_ms} |`,
    '<!-- bench:end -->',
  ].join('\n')
  const current = await readFile(path, 'utf8').catch(
    () => '# Benchmarks\n\n<!-- bench:start --><!-- bench:end -->\n',
  )
  const next = current.replace(/<!-- bench:start[\s\S]*?<!-- bench:end -->/, generated)
  await writeFile(path, next)
}

await run()
process.exit(0)
