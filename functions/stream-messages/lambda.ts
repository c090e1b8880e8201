import { streamHandle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createStreamMessagesApp } from './app.ts'

// Response streaming behind a function URL: the stream ends before the function's timeout
// (LIVE_STREAM_MAX_S) and the client resumes with its cursor.
export const handler = streamHandle(
  createStreamMessagesApp(createDeps(loadConfig(process.env), { isLambda: true })),
)
