import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createUpdateApplicationApp } from './app.ts'

export const handler = handle(createUpdateApplicationApp(createDeps(loadConfig(process.env))))
