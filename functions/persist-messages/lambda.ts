import { createLambdaDeps } from '../../lib/lambda.ts'
import { createPersistMessagesConsumer } from './consumer.ts'

export const handler = createPersistMessagesConsumer(createLambdaDeps(process.env))
