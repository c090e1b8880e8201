import { type Column, getTableColumns, type SQL, sql } from 'drizzle-orm'
import type { MySqlTable } from 'drizzle-orm/mysql-core'
import type { ResultSetHeader } from 'mysql2'
import { type Db, poolOf, prepared } from '../db.ts'

// The row is this create's own (or still bare), or the write is an update: only then does it apply.
// True whether MySQL assigns create_version before or after evaluating it.
const isOwnRow = sql.raw('(VALUES(create_version) = 0 OR create_version IN (0, VALUES(create_version)))')

/** The update was accepted before any second create of the row's number. */
const isBeforeCollision = (versionColumn: string) =>
  sql.raw(`(collision_version = 0 OR VALUES(${versionColumn}) < collision_version)`)

// Records the earliest create that found the row owned by another. create_version is assigned
// first (it comes first in the table), and either value of it gives the same answer here.
const collisionVersion = sql.raw(
  'IF(create_version <> 0 AND VALUES(create_version) NOT IN (0, create_version), ' +
    'IF(collision_version = 0, VALUES(create_version), LEAST(collision_version, VALUES(create_version))), collision_version)',
)

/**
 * The ON DUPLICATE KEY UPDATE clause of a versioned row (a chat's title, a message's body): the
 * content and updated_at of the highest version, the earliest created_at, and the collision
 * bookkeeping, each only where the row is this create's own and the write predates any collision.
 */
export const versionedUpsert = <Content extends string, Version extends string>(
  content: { key: Content; column: string },
  version: { key: Version; column: string },
) => {
  const contentColumn = sql.raw(content.column)
  const versionColumn = sql.raw(version.column)
  const applies = sql`(${isOwnRow} AND ${isBeforeCollision(version.column)})`
  const newer = sql`${applies} AND VALUES(${versionColumn}) >= ${versionColumn}`
  return {
    [content.key]: sql`IF(${newer}, VALUES(${contentColumn}), ${contentColumn})`,
    updatedAt: sql`IF(${newer}, VALUES(updated_at), updated_at)`,
    createdAt: sql`IF(${isOwnRow}, LEAST(created_at, VALUES(created_at)), created_at)`,
    [version.key]: sql`IF(${applies}, GREATEST(${versionColumn}, VALUES(${versionColumn})), ${versionColumn})`,
    createVersion: sql`IF(create_version = 0, VALUES(create_version), create_version)`,
    collisionVersion,
  } as { [K in Content | Version]: SQL } & Record<
    'updatedAt' | 'createdAt' | 'createVersion' | 'collisionVersion',
    SQL
  >
}

interface UpsertShape {
  /** `insert into t (columns) values ` */
  head: string
  /** One row's `(?, ?, default, …)`. */
  tuple: string
  /** ` on duplicate key update …`, without parameters. */
  tail: string
  /** The row's keys in the order of the tuple's parameters, with their columns' driver mapping. */
  columns: Array<[key: string, column: Column]>
}

// MySQL's summary of a multi-row INSERT (`mysql_info()`): rows, rows that met an existing key, and
// warnings. mysql2 connects with CLIENT_FOUND_ROWS, under which "Duplicates" counts every row that
// met an existing key, whether the update clause changed it or not (MySQL and MariaDB alike,
// sql_insert.cc: `deleted + touched`). A single-row INSERT sends no summary.
const INSERT_INFO = /^Records: (\d+) {2}Duplicates: (\d+) {2}Warnings: (\d+)$/

/**
 * Whether MySQL says that every row was inserted as given: none met an existing key, nothing was
 * truncated or converted. The rows stored are then exactly the values sent.
 */
const isInsertedAsGiven = (info: string | undefined, rowCount: number) => {
  const [, records, duplicates, warnings] = INSERT_INFO.exec(info ?? '') ?? []
  return Number(records) === rowCount && duplicates === '0' && warnings === '0'
}

/**
 * A multi-row `INSERT … ON DUPLICATE KEY UPDATE` that drizzle builds once, for one row (`build`),
 * and that each call repeats for its rows. Drizzle building the statement of a batch walks every
 * parameter: 5 ms of CPU for 250 messages, which the consumers paid per batch. Values are mapped
 * as drizzle maps them (`mapToDriverValue`); the update clause must take no parameters. Rows of
 * one call have the keys of the first. Resolves `isInsertedAsGiven`: true when MySQL reported
 * that every row was a new one, stored as sent (never for a single row, which gets no report),
 * so that the caller need not read them back.
 *
 * @example const upsert = bulkUpsert(t, (db, row) => db.insert(t).values(row).onDuplicateKeyUpdate({ set }))
 * const { isInsertedAsGiven } = await upsert(db, rows)
 */
export const bulkUpsert = <Row extends Record<string, unknown>>(
  table: MySqlTable,
  build: (db: Db, row: Row) => { toSQL(): { sql: string; params: unknown[] } },
) => {
  const shapesOf = prepared(() => new Map<string, UpsertShape>())
  const shapeOf = (db: Db, row: Row) => {
    const keys = Object.keys(row).filter((key) => row[key] !== undefined)
    const byKeys = shapesOf(db)
    let shape = byKeys.get(keys.join())
    if (shape === undefined) {
      const { sql: text, params } = build(db, row).toSQL()
      const open = text.indexOf(' values (') + ' values '.length
      const close = text.indexOf(') on duplicate key update ', open) + 1
      const columns = Object.entries(getTableColumns(table)).filter(([key]) => keys.includes(key))
      const tuple = text.slice(open, close)
      if (open < ' values '.length || close === 0 || (tuple.match(/\?/g) ?? []).length !== columns.length) {
        throw new Error(`bulkUpsert: not a one-row upsert whose parameters are its values: ${text}`)
      }
      if (params.length !== columns.length) throw new Error('bulkUpsert: the update clause takes parameters')
      shape = { head: text.slice(0, open), tuple, tail: text.slice(close), columns }
      byKeys.set(keys.join(), shape)
    }
    return shape
  }
  return async (db: Db, rows: Row[]): Promise<{ isInsertedAsGiven: boolean }> => {
    if (rows.length === 0) return { isInsertedAsGiven: true }
    const { head, tuple, tail, columns } = shapeOf(db, rows[0]!)
    const params: unknown[] = []
    for (const row of rows) {
      let defined = 0
      for (const key in row) if (row[key] !== undefined) defined++
      for (const [key, column] of columns) {
        const value = row[key]
        if (value !== undefined) defined--
        params.push(value === null || value === undefined ? null : column.mapToDriverValue(value))
      }
      // The statement has the first row's columns: a field that only a later row sets would be lost.
      if (defined !== 0) throw new Error('bulkUpsert: a row sets a column the first row does not')
    }
    const [result] = await poolOf(db).query<ResultSetHeader>(
      `${head}${Array.from({ length: rows.length }, () => tuple).join(', ')}${tail}`,
      params,
    )
    return { isInsertedAsGiven: isInsertedAsGiven(result.info, rows.length) }
  }
}
