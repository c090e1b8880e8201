import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createGetChatApp } from './app.ts'

export const handler = handle(createGetChatApp(createLambdaDeps(process.env)))
