import type { Versioned } from './collapse.ts'
import type { PersistDeps } from './deps.ts'

/** A create whose number another create already holds: Redis handed the number out twice. */
export class NumberCollisionError extends Error {
  override name = 'NumberCollisionError'
  readonly jobs: Array<{ app: number; chat: number; message?: number; version: number }>
  constructor(jobs: Array<{ app: number; chat: number; message?: number; version: number }>) {
    super(
      `number collision: ${jobs
        .map(
          (job) => `application ${job.app} chat ${job.chat}${job.message ? ` message ${job.message}` : ''}`,
        )
        .join(', ')} already belong to another create; these jobs go to the dead-letter queue`,
    )
    this.jobs = jobs
  }
}

/** What a job needs to know of its row as stored after the upsert. */
interface StoredRow {
  createVersion: number
  collisionVersion: number
  /** The version of the row's title or body. */
  version: number
}

/**
 * The jobs the stored row does not reflect: a create whose number another create owns, an update
 * accepted after a second create of its number, and any update that did not apply (folded into a
 * refused write of the batch: alone, on its next delivery, it does).
 */
const refusedJobs = <T extends Versioned>(jobs: T[], storedOf: (job: T) => StoredRow | undefined) =>
  jobs.filter((job) => {
    const row = storedOf(job)
    if (!row) return false
    if (job.op === 'create') return row.createVersion !== job.version
    return row.version < job.version || (row.collisionVersion !== 0 && job.version > row.collisionVersion)
  })

/**
 * The losing creates whose row already took an update accepted after them: SQS delivered that
 * update first, so it applied before the collision was known, and may be the loser's.
 */
const updatedAfterCollision = <T extends Versioned>(
  refused: T[],
  storedOf: (job: T) => StoredRow | undefined,
) => refused.filter((job) => job.op === 'create' && (storedOf(job)?.version ?? 0) > job.version)

/** Reports the jobs a collision refused: logged as errors, failed to the DLQ. */
const failRefused = <T extends { app: number; chat: number; version: number; rid?: string | undefined }>(
  deps: Pick<PersistDeps, 'logger'>,
  jobs: T[],
  inDoubt: T[],
) => {
  const error = new NumberCollisionError(jobs)
  deps.logger.error('number collision', {
    err: error,
    request_ids: jobs.map((job) => job.rid),
    ...(inDoubt.length > 0 && { updated_before_detected: new NumberCollisionError(inDoubt).message }),
  })
  throw error
}

/**
 * Fails the batch when the stored rows do not reflect some of its jobs (a number collision): the
 * chats' and the messages' one check.
 */
export const failCollisions = <T extends Versioned & { app: number; chat: number; rid?: string | undefined }>(
  deps: Pick<PersistDeps, 'logger'>,
  jobs: T[],
  storedOf: (job: T) => StoredRow | undefined,
) => {
  const refused = refusedJobs(jobs, storedOf)
  if (refused.length > 0) failRefused(deps, refused, updatedAfterCollision(refused, storedOf))
}
