import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createCreateChatApp } from './app.ts'

export const handler = handle(createCreateChatApp(createDeps(loadConfig(process.env), { isLambda: true })))
