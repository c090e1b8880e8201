import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createListMessagesApp } from './app.ts'

export const handler = handle(createListMessagesApp(createLambdaDeps(process.env)))
