import { createLambdaDeps } from '../../lib/lambda.ts'
import { createRetryIndexingJob } from './job.ts'

const job = createRetryIndexingJob(createLambdaDeps(process.env))

/** EventBridge schedule (every minute): indexes what the consumers could not. */
export const handler = () => job()
