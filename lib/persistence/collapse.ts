import { acceptedAt } from '../jobs.ts'

// Delivery is at-least-once and in any order. Every write is an upsert by the natural key whose
// fields follow one rule: the highest version wins, created_at is the earliest seen. Applying a
// set of jobs in any order, any number of times, therefore ends in the state that in-order,
// exactly-once delivery gives. The comparisons use >= so that they hold whether MySQL assigns
// the version column before or after the others (a version is handed out once, so an equal
// version is the same write delivered again). A message may arrive before its chat: the chat row
// is then created bare (no title, version 0) and completed when the chat's own job arrives.
//
// A row's number belongs to the create that first persisted it (`create_version`). Another create
// under the same number can only come from Redis handing a number out twice (it lost writes it had
// acknowledged, see the README): that create changes nothing, and its job fails with
// NumberCollisionError so that it ends in the dead-letter queue, loud, instead of overwriting.
// The row also records that create's version (`collision_version`): an update accepted after it
// may come from the losing create's client, which knows the number but not whose it is, so it no
// longer applies and fails the same way. Updates accepted before it can only be the owner's.
// Every update job is checked against the row as stored: one that did not apply fails.

export type Versioned = { op: 'create' | 'update'; version: number }

interface Collapsed<T> {
  key: string
  winner: T
  createdAt: Date
  /** The version of the create among these jobs (the earliest, if several), else 0. */
  createVersion: number
}

/**
 * Folds the jobs of one batch per row: the highest version's content, the earliest time. A second
 * create of the same row within the batch is a collision: it is left out (and reported by the
 * caller, which finds the row owned by another create).
 */
export const collapse = <T extends Versioned>(jobs: T[], keyOf: (job: T) => string) => {
  const creates = new Map<string, number>()
  for (const job of jobs) {
    if (job.op !== 'create') continue
    const key = keyOf(job)
    creates.set(key, Math.min(creates.get(key) ?? job.version, job.version))
  }
  const rows = new Map<string, Collapsed<T>>()
  for (const job of jobs) {
    const key = keyOf(job)
    if (job.op === 'create' && job.version !== creates.get(key)) continue
    const at = acceptedAt(job.version)
    const row = rows.get(key)
    if (!row) rows.set(key, { key, winner: job, createdAt: at, createVersion: creates.get(key) ?? 0 })
    else {
      if (job.version > row.winner.version) row.winner = job
      if (at < row.createdAt) row.createdAt = at
    }
  }
  // Sorted by key, so that concurrent batches lock rows in one order and rarely deadlock.
  return [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** A row's key part, zero-padded so that keys sort like the numbers. */
export const pad = (n: number) => n.toString().padStart(10, '0')
