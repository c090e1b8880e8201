import { type SQL, sql } from 'drizzle-orm'

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
