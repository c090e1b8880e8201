import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createListMessagesApp } from './app.ts'

export const handler = handle(createListMessagesApp(createDeps(loadConfig(process.env), { isLambda: true })))
