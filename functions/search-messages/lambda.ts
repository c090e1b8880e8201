import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createSearchMessagesApp } from './app.ts'

export const handler = handle(
  createSearchMessagesApp(createDeps(loadConfig(process.env), { isLambda: true })),
)
