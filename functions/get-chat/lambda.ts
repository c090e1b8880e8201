import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createGetChatApp } from './app.ts'

export const handler = handle(createGetChatApp(createDeps(loadConfig(process.env), { isLambda: true })))
