import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createCreateChatApp } from './app.ts'

export const handler = handle(createCreateChatApp(createLambdaDeps(process.env)))
