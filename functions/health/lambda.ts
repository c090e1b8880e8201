import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createHealthApp } from './app.ts'

export const handler = handle(createHealthApp(createDeps(loadConfig(process.env))))
