import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createCreateMessageApp } from './app.ts'

export const handler = handle(createCreateMessageApp(createLambdaDeps(process.env)))
