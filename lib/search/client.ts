import { Client, SniffingTransport } from '@elastic/elasticsearch'
import type { SearchQuery } from '../api/schemas.ts'
import type { Config } from '../config.ts'
import { UnavailableError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { timeSearch } from '../metrics.ts'
import { documentId, type MessageDocument, toSource } from './document.ts'
import { errorType, isUnavailable } from './errors.ts'
import { INDEX_MAPPINGS, INDEX_SETTINGS, initialIndexName } from './index-settings.ts'
import { escapeHtml, SEARCH_FIELDS, type SearchPage, searchBody } from './query.ts'

export interface BulkOutcome {
  indexed: number
  stale: number
  failed: MessageDocument[]
}

/**
 * The client's own transport without its OpenTelemetry instrumentation. The project traces with
 * request ids and metrics, not OpenTelemetry; with no tracer registered the instrumentation still
 * ran for every request, and for a search it serialized and sanitized the whole query into a span
 * attribute that went nowhere.
 */
class UntracedTransport extends SniffingTransport {
  constructor(options: ConstructorParameters<typeof SniffingTransport>[0]) {
    super({ ...options, openTelemetry: { enabled: false } })
  }
}

/** The client-backed search: index management, indexing, queries. */
export interface Search {
  readonly client: Client
  /** The alias every read and write goes through (SEARCH_INDEX). */
  readonly alias: string
  /** Creates the versioned index behind the alias if the alias does not exist. Safe to race. */
  ensureIndex(): Promise<{ created: boolean }>
  /** Writes documents with external versions; never throws for per-document failures. */
  bulkIndex(
    documents: MessageDocument[],
    options?: { index?: string; refresh?: boolean },
  ): Promise<BulkOutcome>
  /** A page of one chat's messages containing `q`; UnavailableError when the engine is down. */
  search(chatId: number, query: SearchQuery): Promise<SearchPage>
  /** Throws unless the engine answers. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface SearchDeps {
  logger: Pick<Logger, 'warn' | 'error' | 'info'>
}

// A search answers quickly or not at all: a dead engine is a 503 within about 2.5 s, not a hang.
const SEARCH_TIMEOUT_MS = 2_500
// A bulk write may take longer, but it holds an SQS batch: at most 2 × 5 s, well under the
// visibility timeout, before its documents go to the outbox.
const BULK_OPTIONS = { requestTimeout: 5_000, maxRetries: 1 }

type BulkItem = { status?: number; error?: { type?: string; reason?: string } }
const BULK_FIELDS = ['items.*.status', 'items.*.error.type', 'items.*.error.reason']

/** Runs at most `limit` calls of `work` at once; the others wait their turn, in order. */
const limiter = (limit: number) => {
  let active = 0
  const waiting: Array<() => void> = []
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (active < limit) active++
    else await new Promise<void>((resolve) => waiting.push(resolve)) // handed its slot on release
    try {
      return await work()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else active--
    }
  }
}

/**
 * Builds the Elasticsearch client and the search on top of it. Opens no connection until used.
 *
 * @example const search = createSearch(config, { logger }); await search.ensureIndex()
 */
export const createSearch = (
  config: Pick<Config, 'ELASTICSEARCH_URL' | 'SEARCH_INDEX'>,
  deps: SearchDeps,
  {
    client = new Client({
      node: config.ELASTICSEARCH_URL,
      requestTimeout: SEARCH_TIMEOUT_MS,
      maxRetries: 0,
      Transport: UntracedTransport,
    }),
    bulkConcurrency = 4,
  }: {
    client?: Client
    /**
     * Bulk requests this process has in flight at most; more wait for one to end. The engine
     * indexes more with more in flight, up to a point past which each takes longer; consumers
     * that poll more batches than this overlap their MySQL work with the others' indexing.
     */
    bulkConcurrency?: number
  } = {},
): Search => {
  const alias = config.SEARCH_INDEX
  const bulkSlot = limiter(bulkConcurrency)
  const { logger } = deps

  const ensureIndex = async () => {
    if (await client.indices.existsAlias({ name: alias })) return { created: false }
    const index = initialIndexName(alias)
    try {
      // The alias is created in the same call, so the index never exists without it.
      await client.indices.create({
        index,
        settings: INDEX_SETTINGS,
        mappings: INDEX_MAPPINGS,
        aliases: { [alias]: { is_write_index: true } },
      })
      logger.info('search index created', { index, alias })
      return { created: true }
    } catch (error) {
      // Another server won the race, with the same name, settings and alias.
      if (errorType(error) !== 'resource_already_exists_exception') throw error
      if (!(await client.indices.existsAlias({ name: alias }))) {
        // Only if someone removed the alias by hand: point it back at the index.
        await client.indices.updateAliases({ actions: [{ add: { index, alias, is_write_index: true } }] })
      }
      return { created: false }
    }
  }

  // In Lambda nothing runs ensureIndex at start: the first write does it, once per cold start.
  let ensured: Promise<unknown> | undefined
  const ensureOnce = () => {
    ensured ??= ensureIndex().catch((error) => {
      ensured = undefined
      throw error
    })
    return ensured
  }

  const bulkIndex = async (
    documents: MessageDocument[],
    { index = alias, refresh = false }: { index?: string; refresh?: boolean } = {},
  ): Promise<BulkOutcome> => {
    if (documents.length === 0) return { indexed: 0, stale: 0, failed: [] }
    try {
      if (index === alias) await ensureOnce()
      const response = await bulkSlot(() =>
        client.bulk(
          {
            // Never auto-create a concrete index named like the alias with a dynamic mapping.
            require_alias: index === alias,
            refresh,
            // Only what is read below: the full answer (index, id, version, result, shards, seq_no,
            // term per document) is 41 KB for 250 documents, this one 6 KB, a quarter of the
            // parsing, and less for the engine to write.
            filter_path: BULK_FIELDS,
            operations: documents.flatMap((document) => [
              {
                index: {
                  _index: index,
                  _id: documentId(document.chatId, document.number),
                  routing: String(document.chatId),
                  version: document.version,
                  version_type: 'external_gte' as const,
                },
              },
              toSource(document),
            ]),
          },
          BULK_OPTIONS,
        ),
      )
      const outcome: BulkOutcome = { indexed: 0, stale: 0, failed: [] }
      response.items.forEach((item, i) => {
        const result = (item.index ?? Object.values(item)[0]) as BulkItem
        const status = result.status ?? 500
        if (status < 300) outcome.indexed++
        // A newer or equal version is already indexed: this write has nothing to add.
        else if (status === 409) outcome.stale++
        else {
          outcome.failed.push(documents[i]!)
          logger.warn('search index rejected a document', {
            status,
            type: result.error?.type,
            reason: result.error?.reason,
          })
        }
      })
      return outcome
    } catch (error) {
      logger.warn('search bulk request failed', { err: error, size: documents.length })
      return { indexed: 0, stale: 0, failed: documents }
    }
  }

  const search = async (chatId: number, { q, limit, offset }: SearchQuery): Promise<SearchPage> => {
    try {
      const response = await client.search<{
        number: number
        body: string
        created_at: string
        updated_at: string
      }>({
        index: alias,
        routing: String(chatId),
        filter_path: SEARCH_FIELDS,
        ...searchBody(chatId, { q, limit, offset }),
      })
      const total = response.hits.total
      return {
        data: (response.hits.hits ?? []).map((hit) => {
          const source = hit._source!
          const highlight =
            hit.highlight?.['body.ngram']?.[0] ??
            hit.highlight?.['body.chars']?.[0] ??
            hit.highlight?.['body.short']?.[0]
          return {
            number: source.number,
            body: source.body,
            created_at: source.created_at,
            updated_at: source.updated_at,
            highlight: highlight ?? escapeHtml(source.body),
          }
        }),
        total: typeof total === 'number' ? total : (total?.value ?? 0),
      }
    } catch (error) {
      // Nothing was ever indexed through this alias yet: no hits, rather than an error.
      if (errorType(error) === 'index_not_found_exception') return { data: [], total: 0 }
      if (isUnavailable(error))
        throw new UnavailableError('search is', { cause: error, retryAfterSeconds: 5 })
      throw error
    }
  }

  return {
    client,
    alias,
    ensureIndex,
    bulkIndex,
    search: timeSearch(search),
    ping: async () => {
      if (!(await client.ping({}, { requestTimeout: 1_500, maxRetries: 0 })))
        throw new Error('search did not answer')
    },
    close: () => client.close(),
  }
}
