import { sql } from 'drizzle-orm'
import { bigint, customType, datetime, index, int, mysqlTable, uniqueIndex } from 'drizzle-orm/mysql-core'

// Text columns name their character set and collation: the server default differs between
// MySQL 8.4 (utf8mb4_0900_ai_ci, unknown to MariaDB) and MariaDB 10.11, and the project runs on both.
const TEXT_COLLATION = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci'

const utf8Varchar = customType<{ data: string; config: { length: number } }>({
  dataType: (config) => `varchar(${config?.length ?? 255}) ${TEXT_COLLATION}`,
})

const utf8Text = customType<{ data: string }>({
  dataType: () => `text ${TEXT_COLLATION}`,
})

/** Tokens compare byte for byte: base64url is case-sensitive. */
const asciiToken = customType<{ data: string }>({
  dataType: () => 'char(32) CHARACTER SET ascii COLLATE ascii_bin',
})

const id = () => bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey()
const parentId = (name: string) => bigint(name, { mode: 'number', unsigned: true }).notNull()
const millis = (name: string) => datetime(name, { mode: 'date', fsp: 3 }).notNull()
// A version orders the writes to one field in the order the API accepted them (see lib/numbering/).
// `create_version` is the version of the create that owns the row's number (0 while the row is a
// bare placeholder): a second create under the same number is a collision, never a merge.
const version = (name: string) => bigint(name, { mode: 'number', unsigned: true }).notNull().default(0)
// `collision_version` is the version of the earliest create that found the number taken (0 = none):
// updates accepted after it may come from that create's client, so they no longer apply (README).

export const applications = mysqlTable(
  'applications',
  {
    id: id(),
    token: asciiToken('token').notNull(),
    name: utf8Varchar('name', { length: 255 }).notNull(),
    chatsCount: int('chats_count', { unsigned: true }).notNull().default(0),
    createdAt: millis('created_at'),
    updatedAt: millis('updated_at'),
  },
  (table) => [uniqueIndex('applications_token_unique').on(table.token)],
)

export const chats = mysqlTable(
  'chats',
  {
    id: id(),
    applicationId: parentId('application_id'),
    number: int('number', { unsigned: true }).notNull(),
    title: utf8Varchar('title', { length: 255 }),
    titleVersion: version('title_version'),
    messagesCount: int('messages_count', { unsigned: true }).notNull().default(0),
    createdAt: millis('created_at'),
    updatedAt: millis('updated_at'),
    createVersion: version('create_version'),
    collisionVersion: version('collision_version'),
  },
  (table) => [uniqueIndex('chats_application_number_unique').on(table.applicationId, table.number)],
)

export const messages = mysqlTable(
  'messages',
  {
    id: id(),
    chatId: parentId('chat_id'),
    number: int('number', { unsigned: true }).notNull(),
    body: utf8Text('body').notNull(),
    bodyVersion: version('body_version'),
    createdAt: millis('created_at'),
    updatedAt: millis('updated_at'),
    createVersion: version('create_version'),
    collisionVersion: version('collision_version'),
    // The search outbox: the highest body_version whose index write failed and has not landed
    // since (0 = the index has the body). Lives with the row, so no Redis loss can forget it.
    unindexedVersion: version('unindexed_version'),
    // When a consumer last changed the row (database clock): what a reindex's catch-up scans.
    persistedAt: datetime('persisted_at', { mode: 'date', fsp: 3 })
      .notNull()
      .default(sql`CURRENT_TIMESTAMP(3)`),
  },
  (table) => [
    uniqueIndex('messages_chat_number_unique').on(table.chatId, table.number),
    index('messages_unindexed').on(table.unindexedVersion),
    index('messages_persisted_at').on(table.persistedAt),
  ],
)

/**
 * Small state of the scheduled jobs, kept where their writes go: `fence` is bumped by each holder
 * of a job's lock and checked by its writes; `position` is a resumable scan's checkpoint.
 */
export const jobState = mysqlTable('job_state', {
  name: customType<{ data: string }>({ dataType: () => 'varchar(64) CHARACTER SET ascii COLLATE ascii_bin' })(
    'name',
  )
    .notNull()
    .primaryKey(),
  fence: bigint('fence', { mode: 'number', unsigned: true }).notNull().default(0),
  position: bigint('position', { mode: 'number', unsigned: true }).notNull().default(0),
})

export type ApplicationRow = typeof applications.$inferSelect
export type ChatRow = typeof chats.$inferSelect
export type MessageRow = typeof messages.$inferSelect
