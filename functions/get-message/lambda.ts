import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createGetMessageApp } from './app.ts'

export const handler = handle(createGetMessageApp(createLambdaDeps(process.env)))
