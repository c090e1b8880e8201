import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createCreateMessageApp } from './app.ts'

export const handler = handle(createCreateMessageApp(createDeps(loadConfig(process.env), { isLambda: true })))
