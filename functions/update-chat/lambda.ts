import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createUpdateChatApp } from './app.ts'

export const handler = handle(createUpdateChatApp(createLambdaDeps(process.env)))
