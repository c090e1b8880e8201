// `npm run local`: the whole system natively, with no configuration, on a machine that has MySQL
// (or MariaDB) and Redis on their default local ports. What the machine lacks runs in process:
// the SQS emulator (fauxqs) and, unless ELASTICSEARCH_URL is set, a real OpenSearch engine behind
// the Elasticsearch compatibility layer. Every other variable keeps its default (see .env.example).
import { startFauxqs } from 'fauxqs'
import { createServerApp, startServer } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { createLogger } from '../lib/logger.ts'
import { runMain } from '../lib/run-main.ts'
import { startSearchEngine } from '../tests/search-engine/engine.ts'

const say = (line: string) => process.stderr.write(`[local] ${line}\n`)

const main = async () => {
  const stops: Array<() => Promise<void>> = []
  const env: Record<string, string | undefined> = { ...process.env }
  loadConfig(env) // fail before starting anything if the environment is malformed

  if (!env.SQS_ENDPOINT) {
    const fauxqs = await startFauxqs({ port: 0, logger: false })
    stops.push(() => fauxqs.stop())
    env.SQS_ENDPOINT = fauxqs.address
    say(`SQS: in-process emulator (fauxqs) at ${fauxqs.address}`)
  } else say(`SQS: ${env.SQS_ENDPOINT}`)

  if (!env.ELASTICSEARCH_URL) {
    say('search: starting an in-process OpenSearch engine behind the Elasticsearch compatibility layer…')
    const engine = await startSearchEngine()
    stops.push(() => engine.stop())
    env.ELASTICSEARCH_URL = engine.url
    say(`search: OpenSearch stand-in at ${engine.url}`)
  } else say(`search: Elasticsearch at ${env.ELASTICSEARCH_URL}`)

  const config = loadConfig(env)
  say(`MySQL: ${new URL(config.DATABASE_URL).host}, Redis: ${new URL(config.REDIS_URL).host}`)
  const deps = createDeps(config, { logger: createLogger(config.LOG_LEVEL) })
  const running = await startServer(config, deps, createServerApp(deps))
  say(`API on http://localhost:${running.port} (docs at /docs)`)

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      await running.stop()
      for (const stop of stops.reverse()) await stop().catch(() => undefined)
      process.exit(0)
    })
  }
}

runMain(import.meta.url, main)
