// The server as `npm start` runs it, plus GET /bench/memory: the process's memory after a full
// garbage collection (run with `node --expose-gc`), so that bench/live.ts can weigh open streams.
import { createServerApp, startServer } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { createLogger } from '../lib/logger.ts'

const config = loadConfig(process.env)
const deps = createDeps(config, { logger: createLogger(config.LOG_LEVEL) })
const app = createServerApp(deps)
app.get('/bench/memory', (c) => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return c.json(process.memoryUsage())
})
const running = await startServer(config, deps, app)
process.stdout.write(`READY ${running.port}\n`)
process.once('SIGTERM', () => running.stop().then(() => process.exit(0)))
