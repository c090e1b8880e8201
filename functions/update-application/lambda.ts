import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createUpdateApplicationApp } from './app.ts'

export const handler = handle(createUpdateApplicationApp(createLambdaDeps(process.env)))
