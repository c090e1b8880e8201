import type { ScheduledEvent } from 'aws-lambda'
import type { ReconcileMode } from '../../lib/counts/reconcile.ts'
import { createLambdaDeps } from '../../lib/lambda.ts'
import { createReconcileCountsJob } from './job.ts'

const job = createReconcileCountsJob(createLambdaDeps(process.env))

/** EventBridge schedule (every RECONCILE_INTERVAL_S); a manual invoke may force `detail.mode`. */
export const handler = (event: ScheduledEvent<{ mode?: ReconcileMode } | undefined>) =>
  job(
    event.time ? new Date(event.time) : new Date(),
    event.detail?.mode === 'full' || event.detail?.mode === 'incremental' ? event.detail.mode : undefined,
  )
