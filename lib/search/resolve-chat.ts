import { and, eq, sql } from 'drizzle-orm'
import { applications, chats } from '../../db/schema.ts'
import type { SearchQuery } from '../api/schemas.ts'
import { BoundedMap } from '../bounded-map.ts'
import { type Db, prepared, withDatabase } from '../db.ts'
import { NotFoundError } from '../errors.ts'
import type { Search } from './client.ts'
import type { SearchPage } from './query.ts'

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

// How many resolved chats a process keeps per database, the oldest dropped first. At about 100
// bytes an entry, a megabyte.
const knownChatsOf = prepared(() => new BoundedMap<string, number>(10_000))

/**
 * Resolves a chat's internal id from its application token and number: 404 for an unknown
 * application or chat (one query either way). A chat's id never changes once its row exists (the
 * row is upserted on its application and number and never deleted, and a token never changes),
 * so a process keeps the ids it resolved: a search is then one request to the engine, without a
 * MySQL round trip before it. A chat not found is not kept: its row may land a moment later.
 */
export const resolveChatId = async (db: Db, token: string, chatNumber: number): Promise<number> => {
  const known = knownChatsOf(db)
  const key = `${chatNumber}:${token}`
  const cached = known.get(key)
  if (cached !== undefined) return cached
  const [row] = await withDatabase(() => chatIdByNumber(db).execute({ token, chatNumber }))
  if (!row) throw new NotFoundError('application not found')
  if (row.chatId === null) throw new NotFoundError(`chat ${chatNumber} not found`)
  known.set(key, row.chatId)
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
