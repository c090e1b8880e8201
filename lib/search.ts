import { Client, errors as esErrors, type estypes } from '@elastic/elasticsearch'
import { and, asc, eq, gt, inArray, or, type SQL, sql } from 'drizzle-orm'
import { applications, chats, messages } from '../db/schema.ts'
import type { SearchQuery } from './api/schemas.ts'
import type { Config } from './config.ts'
import { type Db, prepared, retryOnDeadlock, withDatabase } from './db.ts'
import { NotFoundError, UnavailableError } from './errors.ts'
import type { Logger } from './logger.ts'
import { timeSearch } from './metrics.ts'

// Design of message search (see also the README's dated entry):
//
// - Substring search is an exact-phrase query on a trigram subfield (`body.ngram`: ngram 3–3,
//   token_chars [] so that spaces and punctuation count, then lowercase and asciifolding). Every
//   gram sits at the position of its first character, so a slop-0 phrase is an exact substring test
//   on the folded text, for queries of 3+ code points. Queries of 1–2 code points have no trigram:
//   they are the same exact phrase on `body.chars` (ngram 1–1, same filters: one gram per code
//   point, at its position), so a highlight marks exactly the matched characters. The engine
//   analyzes both sides, so case and accent folding can never disagree between JS and Lucene.
// - Mapping version 2 replaced v1's `body.short` (ngram 1–2 searched as one folded keyword: two
//   grams per character, the most expensive field to index) with `body.chars` (one gram per
//   character). Until `npm run reindex` moves the alias, short queries ask both fields: each index
//   has one of them, and a query on a field an index lacks matches nothing there.
// - The query is plain text: it only ever reaches `match_phrase`/`match`, never query_string.
// - One document per message, `_id` = `${chatId}:${number}` (internal ids stay in the index; the
//   API returns number/body/timestamps only), routed by chat so a chat's search hits one shard.
// - Writes use `version_type: external_gte` with the row's body_version: re-indexing a row is
//   idempotent, and a stale write gets a 409 (counted as done) instead of overwriting a newer body.
// - The alias SEARCH_INDEX points at a versioned index: a mapping change ships by `npm run reindex`,
//   which fills a new index from MySQL and swaps the alias atomically.
// - Failed writes go to the outbox, which is a column of the row: `unindexed_version`, the
//   body_version that failed (0 = indexed), with an index to scan the non-zero ones. The
//   retry-indexing job re-reads those rows and indexes them until they land; MySQL persistence never
//   waits for the engine to come back, and no Redis loss or outage length changes what is kept.

/** A message as the search index stores it. */
export interface MessageDocument {
  applicationId: number
  chatId: number
  chatNumber: number
  number: number
  body: string
  version: number
  createdAt: Date
  updatedAt: Date
}

/** One hit as the API returns it. */
export interface SearchHit {
  number: number
  body: string
  created_at: string
  updated_at: string
  highlight: string
}

export interface SearchPage {
  data: SearchHit[]
  total: number
}

/** What a bulk write did: documents that landed (or were already newer) and those to retry. */
export interface BulkOutcome {
  indexed: number
  stale: number
  failed: MessageDocument[]
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
  /** Makes everything written so far searchable (tests, reindex). */
  refresh(index?: string): Promise<void>
  close(): Promise<void>
}

/** Bump when the mapping or analysis changes; `npm run reindex` moves the alias to the new index. */
export const MAPPING_VERSION = 2

/** The first index behind an alias. Deterministic, so servers racing to create it collide safely. */
export const initialIndexName = (alias: string) => `${alias}_v${MAPPING_VERSION}`

const FOLD = ['lowercase', 'asciifolding']

/** Index settings: explicit, so that behaviour does not depend on cluster defaults. */
export const INDEX_SETTINGS: estypes.IndicesIndexSettings = {
  // Documents are small and routed by chat; one shard keeps relevance statistics exact. More
  // shards later is a reindex.
  number_of_shards: 1,
  // No replica on a single node (green health), one as soon as a second node joins.
  auto_expand_replicas: '0-1',
  // Explicit, so that an idle shard keeps refreshing (ES skips refreshes of search-idle shards
  // unless the interval is set) and a message is searchable about a second after persisting.
  refresh_interval: '1s',
  // body.chars is ngram 1–1 and body.ngram 3–3: max − min is 0 for both.
  max_ngram_diff: 0,
  // The contract allows offset 10,000 with limit 100.
  max_result_window: 10_100,
  analysis: {
    tokenizer: {
      trigram: { type: 'ngram', min_gram: 3, max_gram: 3, token_chars: [] },
      unigram: { type: 'ngram', min_gram: 1, max_gram: 1, token_chars: [] },
    },
    analyzer: {
      body_trigram: { type: 'custom', tokenizer: 'trigram', filter: FOLD },
      body_unigram: { type: 'custom', tokenizer: 'unigram', filter: FOLD },
      body_words: { type: 'custom', tokenizer: 'standard', filter: FOLD },
    },
  },
}

/** Strict mapping: a document with an unknown field is rejected rather than widening the index. */
export const INDEX_MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _routing: { required: true },
  _meta: { mapping_version: MAPPING_VERSION },
  properties: {
    application_id: { type: 'long' },
    chat_id: { type: 'long' },
    number: { type: 'integer' },
    body: {
      // Words, for a relevance boost of whole-word matches; the substring fields do the matching.
      type: 'text',
      analyzer: 'body_words',
      fields: {
        ngram: { type: 'text', analyzer: 'body_trigram' },
        chars: { type: 'text', analyzer: 'body_unigram' },
      },
    },
    created_at: { type: 'date' },
    updated_at: { type: 'date', index: false },
    version: { type: 'long', index: false },
  },
}

/** The document id: the message's natural key, so that re-indexing overwrites, never duplicates. */
export const documentId = (chatId: number, number: number) => `${chatId}:${number}`

const toSource = (document: MessageDocument) => ({
  application_id: document.applicationId,
  chat_id: document.chatId,
  number: document.number,
  body: document.body,
  created_at: document.createdAt.toISOString(),
  updated_at: document.updatedAt.toISOString(),
  version: document.version,
})

// Lucene's SimpleHTMLEncoder, which `encoder: html` applies to highlights; used when a hit comes
// back without one, so that `highlight` is always escaped the same way.
const HTML_ESCAPES: Record<string, string> = {
  '"': '&quot;',
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&#x27;',
  '/': '&#x2F;',
}
export const escapeHtml = (text: string) => text.replace(/["&<>'/]/g, (char) => HTML_ESCAPES[char]!)

/** The body query for `q` (already trimmed). Plain text only: the engine never parses q. */
export const bodyQuery = (q: string) => {
  // The n-gram tokenizers count code points, so the choice of subfield must too.
  const length = [...q].length
  const substring =
    length >= 3
      ? { match_phrase: { 'body.ngram': { query: q } } }
      : {
          bool: {
            should: [
              { match_phrase: { 'body.chars': { query: q } } },
              // Mapping v1's field, for an index that `npm run reindex` has not replaced yet.
              { match: { 'body.short': { query: q } } },
            ],
          },
        }
  return {
    bool: {
      must: [substring],
      // Ranks whole-word matches above matches inside words; never decides whether a message matches.
      should: [{ match_phrase: { body: { query: q } } }],
    },
  }
}

const errorType = (error: unknown) =>
  error instanceof esErrors.ResponseError
    ? ((error.body as { error?: { type?: string } } | undefined)?.error?.type ?? String(error.statusCode))
    : undefined

/** True when the engine could not be reached or is overloaded, rather than rejecting the request. */
export const isUnavailable = (error: unknown) =>
  error instanceof esErrors.ConnectionError ||
  error instanceof esErrors.TimeoutError ||
  error instanceof esErrors.NoLivingConnectionsError ||
  (error instanceof esErrors.ResponseError && (error.statusCode === 429 || (error.statusCode ?? 0) >= 500))

const byKeys = (keys: ReadonlyArray<{ chatId: number; number: number }>) => {
  const byChat = new Map<number, number[]>()
  for (const key of keys) byChat.set(key.chatId, [...(byChat.get(key.chatId) ?? []), key.number])
  return or(
    ...[...byChat].map(([chatId, numbers]) =>
      and(eq(messages.chatId, chatId), inArray(messages.number, numbers)),
    ),
  )
}

/**
 * Puts messages whose index write failed in the outbox: their rows' current body_version becomes
 * `unindexed_version`. Throws when MySQL does not answer, so that the batch is delivered again.
 */
export const markUnindexed = async (
  db: Db,
  documents: ReadonlyArray<Pick<MessageDocument, 'chatId' | 'number'>>,
) => {
  if (documents.length === 0) return
  await retryOnDeadlock(() =>
    db
      .update(messages)
      .set({ unindexedVersion: sql`${messages.bodyVersion}` })
      .where(byKeys(documents)),
  )
}

/**
 * Takes messages out of the outbox once the version indexed (or a newer one) is in the index; a
 * message whose newer body failed meanwhile stays.
 */
export const settleIndexed = async (db: Db, done: ReadonlyArray<{ id: number; version: number }>) => {
  if (done.length === 0) return
  const indexed = sql.join(
    done.map((d) => sql`WHEN ${d.id} THEN ${d.version}`),
    sql` `,
  )
  await retryOnDeadlock(() =>
    db
      .update(messages)
      .set({ unindexedVersion: 0 })
      .where(
        and(
          inArray(
            messages.id,
            done.map((d) => d.id),
          ),
          sql`${messages.unindexedVersion} <= CASE ${messages.id} ${indexed} END`,
        ),
      ),
  )
}

/** Where a scan of the outbox resumes: after this (unindexed_version, id). */
export interface UnindexedCursor {
  version: number
  id: number
}

/** A page of the outbox as documents, oldest failure first (a range over `messages_unindexed`). */
export const loadUnindexedPage = async (db: Db, after: UnindexedCursor, limit: number) => {
  // The second branch is empty at the start ({ version: 0 }): rows at 0 are indexed.
  const rows = await documentsWhere(
    db,
    or(
      gt(messages.unindexedVersion, after.version),
      and(
        eq(messages.unindexedVersion, after.version),
        gt(messages.id, after.id),
        gt(messages.unindexedVersion, 0),
      ),
    ),
    limit,
    [asc(messages.unindexedVersion), asc(messages.id)],
  )
  return rows
}

/** Persisted messages whose body is not in the search index yet (a gauge: 0 when all is well). */
export const countUnindexed = async (db: Db) => db.$count(messages, gt(messages.unindexedVersion, 0))

/** Message rows joined with their chat, as documents. */
const documentsWhere = async (
  db: Db,
  where: SQL | undefined,
  limit?: number,
  order: SQL[] = [asc(messages.id)],
) => {
  const query = db
    .select({ message: messages, applicationId: chats.applicationId, chatNumber: chats.number })
    .from(messages)
    .innerJoin(chats, eq(chats.id, messages.chatId))
    .where(where)
    .orderBy(...order)
  const rows = await (limit === undefined ? query : query.limit(limit))
  return rows.map(
    ({
      message,
      applicationId,
      chatNumber,
    }): MessageDocument & { id: number; unindexedVersion: number; persistedAt: Date } => ({
      id: message.id,
      unindexedVersion: message.unindexedVersion,
      persistedAt: message.persistedAt,
      applicationId,
      chatId: message.chatId,
      chatNumber,
      number: message.number,
      body: message.body,
      version: message.bodyVersion,
      createdAt: message.createdAt,
      updatedAt: message.updatedAt,
    }),
  )
}

/** The stored rows of these messages, as documents (messages that do not exist are left out). */
export const loadDocuments = async (db: Db, keys: Array<{ chatId: number; number: number }>) => {
  if (keys.length === 0) return []
  return documentsWhere(db, byKeys(keys))
}

/** One page of every message, by primary key after `afterId`, as documents (for reindexing). */
export const loadDocumentPage = (db: Db, afterId: number, limit: number, where?: SQL) =>
  documentsWhere(db, and(gt(messages.id, afterId), where), limit)

/** Where a scan by persist time resumes: after this (persisted_at, id). */
export interface PersistedCursor {
  at: Date
  id: number
}

/**
 * One page of the messages a consumer wrote at or after `after`, in the order they were written (a
 * range over `messages_persisted_at`), as documents: a reindex's catch-up.
 */
export const loadPersistedPage = (db: Db, after: PersistedCursor, limit: number) =>
  documentsWhere(
    db,
    or(
      gt(messages.persistedAt, after.at),
      and(eq(messages.persistedAt, after.at), gt(messages.id, after.id)),
    ),
    limit,
    [asc(messages.persistedAt), asc(messages.id)],
  )

const chatIdByNumber = prepared((db) =>
  db
    .select({ chatId: chats.id })
    .from(applications)
    .leftJoin(
      chats,
      and(eq(chats.applicationId, applications.id), eq(chats.number, sql.placeholder('chatNumber'))),
    )
    .where(eq(applications.token, sql.placeholder('token')))
    .limit(1)
    .prepare(),
)

/**
 * Resolves a chat's internal id from its application token and number: 404 for an unknown
 * application or chat (one query either way).
 */
export const resolveChatId = async (db: Db, token: string, chatNumber: number): Promise<number> => {
  const [row] = await withDatabase(() => chatIdByNumber(db).execute({ token, chatNumber }))
  if (!row) throw new NotFoundError('application not found')
  if (row.chatId === null) throw new NotFoundError(`chat ${chatNumber} not found`)
  return row.chatId
}

/**
 * Searches one chat's messages: resolves the chat in MySQL (404s), then asks the engine.
 *
 * @example await searchMessages(deps, token, 3, { q: 'hello', limit: 20, offset: 0 })
 */
export const searchMessages = async (
  deps: { db: Db; search: Pick<Search, 'search'> },
  token: string,
  chatNumber: number,
  query: SearchQuery,
): Promise<SearchPage> => deps.search.search(await resolveChatId(deps.db, token, chatNumber), query)

export interface SearchDeps {
  logger: Pick<Logger, 'warn' | 'error' | 'info'>
}

// A search answers quickly or not at all: a dead engine is a 503 within about 2.5 s, not a hang.
const SEARCH_TIMEOUT_MS = 2_500
// A bulk write may take longer, but it holds an SQS batch: at most 2 × 5 s, well under the
// visibility timeout, before its documents go to the outbox.
const BULK_OPTIONS = { requestTimeout: 5_000, maxRetries: 1 }

type BulkItem = { status?: number; error?: { type?: string; reason?: string } }

/**
 * Builds the Elasticsearch client and the search on top of it. Opens no connection until used.
 *
 * @example const search = createSearch(config, { logger }); await search.ensureIndex()
 */
export const createSearch = (
  config: Pick<Config, 'ELASTICSEARCH_URL' | 'SEARCH_INDEX'>,
  deps: SearchDeps,
  {
    client = new Client({ node: config.ELASTICSEARCH_URL, requestTimeout: SEARCH_TIMEOUT_MS, maxRetries: 0 }),
  } = {},
): Search => {
  const alias = config.SEARCH_INDEX
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
      const response = await client.bulk(
        {
          // Never auto-create a concrete index named like the alias with a dynamic mapping.
          require_alias: index === alias,
          refresh,
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
        query: { bool: { filter: [{ term: { chat_id: chatId } }], must: [bodyQuery(q)] } },
        sort: [
          { _score: { order: 'desc' } },
          { created_at: { order: 'desc' } },
          { number: { order: 'desc' } },
        ],
        from: offset,
        size: limit,
        track_total_hits: true,
        _source: ['number', 'body', 'created_at', 'updated_at'],
        highlight: {
          encoder: 'html',
          pre_tags: ['<em>'],
          post_tags: ['</em>'],
          // The highlighted field's text is the parent's _source value: the whole body, escaped.
          fields: {
            'body.ngram': { type: 'unified', number_of_fragments: 0 },
            'body.chars': { type: 'unified', number_of_fragments: 0 },
            'body.short': { type: 'unified', number_of_fragments: 0 },
          },
        },
      })
      const total = response.hits.total
      return {
        data: response.hits.hits.map((hit) => {
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
    refresh: async (target = alias) => {
      await client.indices.refresh({ index: target })
    },
    close: () => client.close(),
  }
}
