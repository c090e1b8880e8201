import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createGetMessageApp } from './app.ts'

export const handler = handle(createGetMessageApp(createDeps(loadConfig(process.env), { isLambda: true })))
