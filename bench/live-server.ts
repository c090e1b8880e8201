// The server as `npm start` runs it, plus GET /bench/memory: the process's memory after a full
// garbage collection (run with `node --expose-gc`), so that bench/live.ts can weigh open streams.
import { startServer } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { createLogger } from '../lib/logger.ts'

const config = loadConfig(process.env)
const running = await startServer(config, createDeps(config, { logger: createLogger(config.LOG_LEVEL) }), {
  extend: (app) => {
    app.get('/bench/memory', (c) => {
      ;(globalThis as { gc?: () => void }).gc?.()
      return c.json(process.memoryUsage())
    })
  },
})
process.stdout.write(`READY ${running.port}\n`)
process.once('SIGTERM', () => running.stop().then(() => process.exit(0)))
