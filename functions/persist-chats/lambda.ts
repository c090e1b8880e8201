import { createLambdaDeps } from '../../lib/lambda.ts'
import { createPersistChatsConsumer } from './consumer.ts'

export const handler = createPersistChatsConsumer(createLambdaDeps(process.env))
