import { handle } from 'hono/aws-lambda'
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createDocsApp } from './app.ts'

export const handler = handle(createDocsApp(createDeps(loadConfig(process.env))))
