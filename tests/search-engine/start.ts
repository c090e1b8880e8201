// CLI: node tests/search-engine/start.ts [--verbose]
// Prints SEARCH_ENGINE_URL=http://127.0.0.1:PORT and runs until SIGINT/SIGTERM, or until the parent
// that started it with an IPC channel goes (see engine.ts).

import { startSearchEngine } from './engine.ts'

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v')
const t0 = Date.now()
startSearchEngine({ log: verbose ? (line) => process.stderr.write(`${line}\n`) : undefined }).then(
  (engine) => {
    process.stderr.write(
      `search-engine: ready in ${Date.now() - t0} ms (OpenSearch at ${engine.directUrl})\n`,
    )
    process.stdout.write(`SEARCH_ENGINE_URL=${engine.url}\n`)
    const keepAlive = setInterval(() => {}, 1 << 30)
    const shutdown = (): void => {
      clearInterval(keepAlive)
      engine.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      )
    }
    process.once('SIGINT', shutdown)
    process.once('SIGTERM', shutdown)
    // Started with an IPC channel (bench/run.ts): the channel closes when the parent goes, even
    // killed hard, and the engine goes with it instead of outliving it.
    process.once('disconnect', shutdown)
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
