import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { createRetryIndexingJob } from './job.ts'

const job = createRetryIndexingJob(createDeps(loadConfig(process.env), { isLambda: true }))

/** EventBridge schedule (every minute): indexes what the consumers could not. */
export const handler = () => job()
