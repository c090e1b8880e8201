import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createUpdateMessageApp } from './app.ts'

export const handler = handle(createUpdateMessageApp(createDeps(loadConfig(process.env), { isLambda: true })))
