// Rebuilds the search index from MySQL into a new versioned index, then moves the alias
// (SEARCH_INDEX) to it in one atomic step; `npm run reindex` (scripts/reindex.ts) is its CLI.
//
// Writes made while the rebuild runs go to the old index through the alias. So after the swap a
// catch-up pass re-indexes, through the alias, every row a consumer wrote since the start (by
// `persisted_at`, the database's clock when the row last changed, not the time the API accepted the
// write: a backlog or a redrive persists old writes late), minus a margin for statements in flight
// at the start. External versions make that pass idempotent, and stale writes lose.
import { sql } from 'drizzle-orm'
import { messages } from '../../db/schema.ts'
import type { Deps } from '../deps.ts'
import type { MessageDocument } from './document.ts'
import { loadDocumentPage, loadPersistedPage, type PersistedCursor } from './documents.ts'
import { INDEX_MAPPINGS, INDEX_SETTINGS, MAPPING_VERSION } from './index-settings.ts'

export interface ReindexProgress {
  phase: 'rebuild' | 'catch-up'
  done: number
  total: number
}

export interface ReindexOptions {
  batchSize?: number
  /** Rows persisted this long before the start are re-indexed after the swap too. */
  catchUpMarginMs?: number
  deleteOld?: boolean
  now?: () => Date
  onProgress?: (progress: ReindexProgress) => void
  /** Called after each batch of the rebuild: a seam for tests that write meanwhile. */
  afterBatch?: (batch: number) => Promise<void>
}

export interface ReindexSummary {
  index: string
  previous: string[]
  indexed: number
  caughtUp: number
  deleted: string[]
  ms: number
}

type ReindexDeps = Pick<Deps, 'db' | 'search' | 'logger'>

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Writes a batch into `index`, retrying the documents that failed; throws if they keep failing. */
const writeBatch = async (deps: ReindexDeps, documents: MessageDocument[], index?: string) => {
  let pending = documents
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > 1) await pause(Math.min(250 * 2 ** attempt, 10_000))
    if (attempt > 8)
      throw new Error(`${pending.length} documents could not be indexed into ${index ?? 'the alias'}`)
    pending = (await deps.search.bulkIndex(pending, index ? { index } : {})).failed
  }
}

const stamp = (date: Date) => date.toISOString().replace(/[-:.TZ]/g, '')

/** Rebuilds the index from MySQL into a new versioned index and moves the alias to it. */
export const reindex = async (deps: ReindexDeps, options: ReindexOptions = {}): Promise<ReindexSummary> => {
  const {
    batchSize = 1_000,
    catchUpMarginMs = 60_000,
    deleteOld = false,
    now = () => new Date(),
    onProgress = () => undefined,
    afterBatch = async () => undefined,
  } = options
  const { client, alias } = deps.search
  const started = now()
  const clock = performance.now()
  // The catch-up compares with persisted_at, so the start comes from the same (database) clock.
  const [rows] = await deps.db.execute(
    sql`SELECT CAST(NOW(3) - INTERVAL ${catchUpMarginMs * 1000} MICROSECOND AS DATETIME(3)) AS since`,
  )
  // Read as drizzle reads a datetime column (as UTC), so that it compares back unchanged.
  const since = new Date(`${(rows as unknown as Array<{ since: string }>)[0]!.since.replace(' ', 'T')}Z`)
  const index = `${alias}_v${MAPPING_VERSION}_${stamp(started)}`

  // No refreshes while loading: one at the end is much cheaper.
  await client.indices.create({
    index,
    settings: { ...INDEX_SETTINGS, refresh_interval: '-1' },
    mappings: INDEX_MAPPINGS,
  })
  deps.logger.info('reindex started', { index, alias })

  const total = await deps.db.$count(messages)
  let indexed = 0
  let afterId = 0
  for (let batch = 1; ; batch++) {
    const page = await loadDocumentPage(deps.db, afterId, batchSize)
    if (page.length === 0) break
    await writeBatch(deps, page, index)
    indexed += page.length
    afterId = page.at(-1)!.id
    onProgress({ phase: 'rebuild', done: indexed, total: Math.max(total, indexed) })
    await afterBatch(batch)
  }
  await client.indices.putSettings({ index, settings: { refresh_interval: INDEX_SETTINGS.refresh_interval } })
  await client.indices.refresh({ index })

  // The swap: one atomic alias update. An alias name taken by a concrete index (written to before
  // any alias existed) is replaced by the alias in the same step.
  const hasAlias = await client.indices.existsAlias({ name: alias })
  const isConcrete = !hasAlias && (await client.indices.exists({ index: alias }))
  const previous = hasAlias
    ? Object.keys(await client.indices.getAlias({ name: alias }))
    : isConcrete
      ? [alias]
      : []
  await client.indices.updateAliases({
    actions: [
      ...(isConcrete
        ? [{ remove_index: { index: alias } }]
        : previous.map((name) => ({ remove: { index: name, alias } }))),
      { add: { index, alias, is_write_index: true } },
    ],
  })
  deps.logger.info('alias moved', { alias, index, previous })

  // Catch-up through the alias: the rows persisted while the rebuild ran went to the old index.
  let caughtUp = 0
  let cursor: PersistedCursor = { at: since, id: 0 }
  for (;;) {
    const page = await loadPersistedPage(deps.db, cursor, batchSize)
    if (page.length === 0) break
    await writeBatch(deps, page)
    caughtUp += page.length
    cursor = { at: page.at(-1)!.persistedAt, id: page.at(-1)!.id }
    onProgress({ phase: 'catch-up', done: caughtUp, total: caughtUp })
  }

  const deleted = deleteOld && !isConcrete ? previous : []
  if (deleted.length > 0) await client.indices.delete({ index: deleted })
  return { index, previous, indexed, caughtUp, deleted, ms: Math.round(performance.now() - clock) }
}
