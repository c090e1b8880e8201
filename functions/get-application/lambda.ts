import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createGetApplicationApp } from './app.ts'

export const handler = handle(createGetApplicationApp(createLambdaDeps(process.env)))
