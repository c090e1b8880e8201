import type { AnyMySqlColumn, MySqlTable } from 'drizzle-orm/mysql-core'
import { applications, chats, messages } from '../../db/schema.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../keys.ts'

// The two stored counts the reconciler keeps right, and what a batch of recounting is told.

/** Rows whose count was read, and those among them whose stored count was wrong and is now fixed. */
export interface ReconcileTally {
  checked: number
  updated: number
}

export interface Counter {
  name: 'applications' | 'chats'
  parent: MySqlTable
  id: AnyMySqlColumn
  count: AnyMySqlColumn
  child: MySqlTable
  /** The child's parent id: the first column of the child's unique index, so counts are index-only. */
  childParent: AnyMySqlColumn
  dirtyKey: string
}

export const COUNTERS: readonly Counter[] = [
  {
    name: 'chats',
    parent: chats,
    id: chats.id,
    count: chats.messagesCount,
    child: messages,
    childParent: messages.chatId,
    dirtyKey: DIRTY_CHATS_KEY,
  },
  {
    name: 'applications',
    parent: applications,
    id: applications.id,
    count: applications.chatsCount,
    child: chats,
    childParent: chats.applicationId,
    dirtyKey: DIRTY_APPLICATIONS_KEY,
  },
]

/** Where a run keeps the dirty ids it drained until it has recounted them. */
export const processingKey = (dirtyKey: string) => `${dirtyKey}:processing`

export interface BatchOptions {
  /** Parent rows per count query and per UPDATE. */
  batchSize: number
  /** Called between a batch's count and its UPDATE: a seam for tests that race the consumers. */
  onCounted?: () => Promise<void>
  /** Called right before a batch's UPDATE is sent: a seam for tests that stall a run. */
  beforeWrite?: () => Promise<void>
}
