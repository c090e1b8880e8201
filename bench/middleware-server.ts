// One piece of the project's middleware at a time, in a process of its own, for
// bench/middleware-cost.ts: a no-op JSON POST at /noop behind
//   PIECES=validate      bare Hono plus the project's JSON body validation (jsonBody + valibot)
//   PIECES=context       createApi with a logger that writes nothing: request id, per-request child
//                        logger, body limit, X-Request-Id, error rendering, plus the validation
//   PIECES=context-log   the same with the access log line to stdout (LOG_LEVEL info, as served)
// Sends its port to the parent over IPC.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import * as v from 'valibot'
import { createApi } from '../lib/http/api.ts'
import { jsonBody } from '../lib/http/validate.ts'
import { createLogger } from '../lib/logger.ts'

const schema = v.strictObject({ body: v.string() })
const pieces = process.env.PIECES ?? 'context-log'
const app =
  pieces === 'validate'
    ? (new Hono() as unknown as ReturnType<typeof createApi>)
    : createApi(createLogger(pieces === 'context-log' ? 'info' : 'silent'))
app.post('/noop', jsonBody(schema), (c) => c.json({ number: 1 }, 202))

serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.send!(info.port))
process.once('SIGTERM', () => process.exit(0))
