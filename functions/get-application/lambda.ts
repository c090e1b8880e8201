import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createGetApplicationApp } from './app.ts'

export const handler = handle(createGetApplicationApp(createDeps(loadConfig(process.env))))
