import { handle } from 'hono/aws-lambda'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createUpdateMessageApp } from './app.ts'

export const handler = handle(createUpdateMessageApp(createLambdaDeps(process.env)))
