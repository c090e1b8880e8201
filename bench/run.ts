// `npm run bench [-- --quick] [-- --only http,reads,...] [-- --search-docs N]`: one run on this
// machine. Every figure of the project is printed next to a bare baseline measured in the same run,
// each in its own process: the project's server (bench/server.ts, as `npm start` runs it, workers
// off), the bare baselines (bench/baseline.ts: Hono + mysql2), the load generator (bench/load.ts:
// autocannon, or an evenly spaced open loop for a rate), the persistence ceilings and the
// consumers (bench/persistence.ts), the SQS emulator. Writes bench/results.json and the table
// between the markers in BENCHMARKS.md. This file starts the processes and runs the sections in
// order; each section is bench/sections/<name>.ts, what they share is bench/harness.ts, and the
// figures with their table are bench/report.ts.
//
// Sections: http (POSTs and GET /health), reads (GET application, chat, page of messages at depth),
// persistence (consumers, on a warm engine, vs raw upserts and the bulk indexing ceiling; the CPU a
// job of every process during the drain), indexing (price of each indexed body field), lag (202 →
// readable, 202 → searchable at half the create rate, evenly spaced), search (p99 at 10
// connections in a chat of 100,000 messages), reconcile. --quick: 5 s loads, smaller data sets, no
// reconcile.
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { migrateDatabase } from '../lib/db.ts'
import { initialIndexName } from '../lib/search/index-settings.ts'
import {
  type BenchRun,
  firstMessage,
  logPath,
  options,
  post,
  QUICK,
  runChild,
  sections,
  start,
  startSearchEngine,
} from './harness.ts'
import { benchLive } from './live.ts'
import { benchReconcile } from './reconcile.ts'
import { results, writeBenchmarksMd } from './report.ts'
import { benchHttp, warmUp } from './sections/http.ts'
import { benchIndexing } from './sections/indexing.ts'
import { benchLag } from './sections/lag.ts'
import { benchPersistence } from './sections/persistence.ts'
import { benchReads } from './sections/reads.ts'
import { benchSearch } from './sections/search.ts'
import { seedReadData } from './seed.ts'
import { startSqs } from './sqs.ts'

const run = async () => {
  const unique = randomBytes(3).toString('hex')
  const { port: sqsPort, child: fauxqs } = await startSqs()
  // A running engine (Elasticsearch, say) when ELASTICSEARCH_URL names one; else the stand-in.
  const engine = process.env.ELASTICSEARCH_URL ? undefined : await startSearchEngine()
  const env: Record<string, string> = {
    ELASTICSEARCH_URL: process.env.ELASTICSEARCH_URL ?? engine!.url,
    SEARCH_INDEX: `bench-messages-${unique}`,
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
  await migrateDatabase(env.DATABASE_URL!)
  const children: ChildProcess[] = [fauxqs]
  const startServer = async (script: string, extra: Record<string, string> = {}) => {
    const child = start(script, [], { ...env, ...extra })
    children.push(child)
    return `http://127.0.0.1:${await firstMessage<number>(child)}`
  }
  const bare = await startServer('bench/baseline.ts')
  const server = await startServer('bench/server.ts')
  console.log(`server log: ${logPath}; load average ${results.machine.load_average_at_start}`)

  try {
    const writer = (await post(`${server}/applications`, { name: 'bench writes' })) as { token: string }
    for (let chat = 0; chat < 3; chat++) await post(`${server}/applications/${writer.token}/chats`, {})
    const reader = await seedReadData(env.DATABASE_URL!)
    const bench: BenchRun = { unique, env, bare, server, engine, fauxqs, writer, reader, startServer }

    let queued = await warmUp(bench)
    let maxMessageRate = 0
    if (sections.has('http')) {
      const http = await benchHttp(bench)
      queued += http.queued
      maxMessageRate = http.maxMessageRate
    }
    if (sections.has('reads')) await benchReads(bench)
    if (sections.has('persistence')) await benchPersistence(bench, queued)
    if (sections.has('indexing')) await benchIndexing(bench)
    if (sections.has('lag') || sections.has('search')) {
      // Nothing left over from the loads above may queue in front of what is measured next.
      await runChild('bench/persistence.ts', ['drain', JSON.stringify({ jobs: 0 })], env)
    }
    if (sections.has('lag')) await benchLag(bench, maxMessageRate)

    // A busy shared search engine can fail this section: the figures above are still written.
    if (sections.has('search')) {
      await benchSearch(bench).catch((error) => {
        console.log(`search section failed: ${error instanceof Error ? error.message : error}`)
        results.failures = [
          ...(results.failures ?? []),
          `search: ${error instanceof Error ? error.message : error}`,
        ]
      })
    }

    if (sections.has('live')) {
      // Its own server, SQS emulator and subscriber processes (bench/live.ts); the server's index
      // writes fail fast against no engine, so that the engine's JVM does not weigh on the fan-out.
      console.log('\n# Live streams: 1,000 subscribers over 10 chats, 500 messages/s')
      results.live = await benchLive({ durationS: QUICK ? 5 : 10 })
      const l = results.live
      console.log(
        `${l.deliveries}/${l.deliveries_expected} deliveries; from commit p50 ${l.from_commit_p50_ms} ms, p99 ${l.from_commit_p99_ms} ms (target ≤ 250); server's append → write p99 ≤ ${l.server_write_p99_le_ms} ms; idle stream ${l.js_per_idle_stream_kib} KiB of JS heap (target ≤ 20)`,
      )
    }

    if (sections.has('reconcile')) {
      results.reconcile = await benchReconcile()
      console.log(
        `\nreconcile: full ${results.reconcile.full_ms} ms, incremental ${results.reconcile.incremental_ms} ms`,
      )
    }

    if (!options.only) {
      writeFileSync(new URL('results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
      writeBenchmarksMd()
      console.log('\nwrote bench/results.json and BENCHMARKS.md')
    }
  } finally {
    for (const child of children.reverse()) child.kill('SIGTERM')
    await fetch(`${env.ELASTICSEARCH_URL}/${env.SEARCH_INDEX}*,${initialIndexName(env.SEARCH_INDEX!)}`, {
      method: 'DELETE',
    }).catch(() => undefined)
    await engine?.stop()
  }
}

await run()
process.exit(0)
