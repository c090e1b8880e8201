import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createPersistChatsConsumer } from './consumer.ts'

export const handler = createPersistChatsConsumer(createDeps(loadConfig(process.env), { isLambda: true }))
