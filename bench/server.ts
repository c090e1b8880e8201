// The server as `npm start` runs it (same config defaults, LOG_LEVEL included, access log lines to
// stdout), plus one no-op POST on the same root as the real routes, so behind the same middleware
// (request id, access log, body limit) and JSON validation: the project's framework cost. Sends its
// port to the parent over IPC.
import * as v from 'valibot'
import { createServerApp, startServer } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { jsonBody } from '../lib/http/validate.ts'
import { createLogger } from '../lib/logger.ts'

const config = loadConfig(process.env)
const deps = createDeps(config, { logger: createLogger(config.LOG_LEVEL) })
const app = createServerApp(deps)
app.post('/bench/noop', jsonBody(v.strictObject({ body: v.string() })), (c) => c.json({ number: 1 }, 202))
const running = await startServer(config, deps, app)
// To the parent over IPC; on stderr when started by hand (e.g. under a profiler).
if (process.send) process.send(running.port)
else process.stderr.write(`READY ${running.port}\n`)
process.once('SIGTERM', () => running.stop().then(() => process.exit(0)))
