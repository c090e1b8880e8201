import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createCreateApplicationApp } from './app.ts'

export const handler = handle(createCreateApplicationApp(createDeps(loadConfig(process.env))))
