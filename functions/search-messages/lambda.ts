import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createSearchMessagesApp } from './app.ts'

export const handler = handle(createSearchMessagesApp(createLambdaDeps(process.env)))
