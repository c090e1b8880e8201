import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createPersistMessagesConsumer } from './consumer.ts'

export const handler = createPersistMessagesConsumer(createDeps(loadConfig(process.env), { isLambda: true }))
