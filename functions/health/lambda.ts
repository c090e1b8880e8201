import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createHealthApp } from './app.ts'

export const handler = handle(createHealthApp(createLambdaDeps(process.env)))
