// The server as `npm start` runs it, plus one trivial POST that goes through the same root,
// middleware (request id, access log, body limit) and JSON validation: the framework's ceiling.
import * as v from 'valibot'
import { startServer } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { jsonBody } from '../lib/http/validate.ts'
import { createLogger } from '../lib/logger.ts'

const config = loadConfig(process.env)
const running = await startServer(config, createDeps(config, { logger: createLogger(config.LOG_LEVEL) }), {
  extend: (app) => {
    app.post('/bench/noop', jsonBody(v.strictObject({ body: v.string() })), (c) => c.json({ number: 1 }, 202))
  },
})
process.stdout.write(`READY ${running.port}\n`)
process.once('SIGTERM', () => running.stop().then(() => process.exit(0)))
