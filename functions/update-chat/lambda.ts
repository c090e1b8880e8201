import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createUpdateChatApp } from './app.ts'

export const handler = handle(createUpdateChatApp(createDeps(loadConfig(process.env), { isLambda: true })))
