/** At most this many jobs share one SQS message: it bounds what a re-seed must skip (lib/numbering/). */
export const MAX_JOBS_PER_MESSAGE = 25

/**
 * JSON with every non-ASCII character escaped. SQS accepts only some of Unicode in a body (and
 * emulators accept less: fauxqs refuses emoji), while a chat message may hold any of it.
 */
export const toSqsBody = (job: object) =>
  JSON.stringify(job).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
