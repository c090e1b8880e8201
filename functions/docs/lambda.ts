import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createLogger } from '../../lib/logger.ts'
import { createDocsApp } from './app.ts'

// The OpenAPI document and its page: a logger is all it needs, no database, Redis, SQS or search.
export const handler = handle(createDocsApp({ logger: createLogger(loadConfig(process.env).LOG_LEVEL) }))
