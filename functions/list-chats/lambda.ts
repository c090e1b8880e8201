import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createListChatsApp } from './app.ts'

export const handler = handle(createListChatsApp(createLambdaDeps(process.env)))
