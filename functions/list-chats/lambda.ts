import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createListChatsApp } from './app.ts'

export const handler = handle(createListChatsApp(createDeps(loadConfig(process.env), { isLambda: true })))
