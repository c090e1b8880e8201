import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createCreateApplicationApp } from './app.ts'

export const handler = handle(createCreateApplicationApp(createLambdaDeps(process.env)))
