// Reconcile time for 10,000 chats holding 1,000,000 messages: one full sweep that has to fix every
// count, then an incremental run after 1,000 new messages over 100 chats. Seeds a dedicated
// database, `chat_bench`, on the configured MySQL server. `node bench/reconcile.ts` prints the figures.
import { pathToFileURL } from 'node:url'
import mysql from 'mysql2/promise'
import { type Config, loadConfig } from '../lib/config.ts'
import { LAST_FULL_SWEEP_KEY, reconcileCounts } from '../lib/counts/reconcile.ts'
import { RECONCILE_LOCK_KEY } from '../lib/counts/reconcile-lock.ts'
import { migrateDatabase } from '../lib/db.ts'
import { createDeps } from '../lib/deps.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../lib/keys.ts'
import { silentLogger } from '../lib/logger.ts'

const APPLICATIONS = 10
const CHATS_PER_APPLICATION = 1_000
const MESSAGES_PER_CHAT = 100
const NEW_MESSAGES_PER_CHAT = 10
const CHATS_WITH_NEW_MESSAGES = 100
/** Chats per INSERT … SELECT: 100,000 message rows a statement keeps each transaction's undo small. */
const SEED_SLICE = 1_000

// Portable row generators: MySQL has no seq_1_to_N tables and caps recursive CTEs at 1,000 rows.
const DIGITS =
  '(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)'

const benchDatabaseUrl = (config: Config) => {
  const url = new URL(config.DATABASE_URL)
  url.pathname = '/chat_bench'
  return url.toString()
}

const seed = async (connection: mysql.Connection) => {
  for (const table of ['messages', 'chats', 'applications', 'job_state'])
    await connection.query(`TRUNCATE TABLE ${table}`)
  await connection.query(
    `INSERT INTO applications (token, name, created_at, updated_at)
     SELECT CONCAT('bench', LPAD(a.d, 27, '0')), 'bench', NOW(3), NOW(3) FROM ${DIGITS} a WHERE a.d < ?`,
    [APPLICATIONS],
  )
  await connection.query(
    `INSERT INTO chats (application_id, number, created_at, updated_at)
     SELECT a.id, 1 + d0.d + 10 * d1.d + 100 * d2.d, NOW(3), NOW(3)
     FROM applications a CROSS JOIN ${DIGITS} d0 CROSS JOIN ${DIGITS} d1 CROSS JOIN ${DIGITS} d2
     WHERE 1 + d0.d + 10 * d1.d + 100 * d2.d <= ?
     ORDER BY a.id, 1 + d0.d + 10 * d1.d + 100 * d2.d`,
    [CHATS_PER_APPLICATION],
  )
  const [[range]] = (await connection.query(
    'SELECT MIN(id) AS first, MAX(id) AS last FROM chats',
  )) as unknown as [Array<{ first: number; last: number }>]
  for (let from = range!.first; from <= range!.last; from += SEED_SLICE) {
    await connection.query(
      `INSERT INTO messages (chat_id, number, body, created_at, updated_at)
       SELECT c.id, 1 + d0.d + 10 * d1.d, 'a message body of a typical length for a chat', NOW(3), NOW(3)
       FROM chats c CROSS JOIN ${DIGITS} d0 CROSS JOIN ${DIGITS} d1
       WHERE c.id BETWEEN ? AND ? AND 1 + d0.d + 10 * d1.d <= ?
       ORDER BY c.id, 1 + d0.d + 10 * d1.d`,
      [from, from + SEED_SLICE - 1, MESSAGES_PER_CHAT],
    )
  }
  await connection.query('ANALYZE TABLE applications, chats, messages')
}

/** 1,000 new messages over 100 chats spread across the table; returns the chats and their applications. */
const addNewMessages = async (connection: mysql.Connection) => {
  const [rows] = (await connection.query(
    'SELECT id, application_id AS applicationId FROM chats WHERE MOD(id, ?) = 0 ORDER BY id LIMIT ?',
    [(APPLICATIONS * CHATS_PER_APPLICATION) / CHATS_WITH_NEW_MESSAGES, CHATS_WITH_NEW_MESSAGES],
  )) as unknown as [Array<{ id: number; applicationId: number }>]
  const values = rows.flatMap((chat) =>
    Array.from({ length: NEW_MESSAGES_PER_CHAT }, (_, i) => [
      chat.id,
      MESSAGES_PER_CHAT + i + 1,
      'a new message',
      new Date(),
      new Date(),
    ]),
  )
  await connection.query('INSERT INTO messages (chat_id, number, body, created_at, updated_at) VALUES ?', [
    values,
  ])
  return {
    chatIds: rows.map((chat) => chat.id),
    applicationIds: [...new Set(rows.map((chat) => chat.applicationId))],
  }
}

/** Seeds `chat_bench` and times a full sweep and an incremental run of the count reconciler. */
export async function benchReconcile(
  config: Config = loadConfig(process.env),
): Promise<{ full_ms: number; incremental_ms: number; chats: number; messages: number }> {
  const url = benchDatabaseUrl(config)
  await migrateDatabase(url)
  const deps = createDeps(
    { ...config, DATABASE_URL: url, REDIS_KEY_PREFIX: `${config.REDIS_KEY_PREFIX}bench:reconcile:` },
    { logger: silentLogger },
  )
  const connection = await mysql.createConnection({ uri: url, timezone: 'Z' })
  const forgetKeys = () =>
    deps.redis.del(
      ...[DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY].flatMap((key) => [key, `${key}:processing`]),
      RECONCILE_LOCK_KEY,
      LAST_FULL_SWEEP_KEY,
    )
  try {
    await forgetKeys()
    await seed(connection)
    // The whole sweep in one run, whatever its length: that is the figure.
    const options = {
      now: new Date(),
      fullIntervalMs: config.RECONCILE_FULL_INTERVAL_S * 1000,
      timeBudgetMs: Number.POSITIVE_INFINITY,
    }

    let started = performance.now()
    const full = await reconcileCounts(deps, { ...options, mode: 'full' })
    const fullMs = performance.now() - started
    const [[totals]] = (await connection.query(
      'SELECT COUNT(*) AS chats, SUM(messages_count) AS messages FROM chats',
    )) as unknown as [Array<{ chats: number; messages: number | string }>]

    const { chatIds, applicationIds } = await addNewMessages(connection)
    // What the consumers do after persisting the batch.
    await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
    await deps.redis.sadd(DIRTY_APPLICATIONS_KEY, ...applicationIds.map(String))
    started = performance.now()
    const incremental = await reconcileCounts(deps, { ...options, mode: 'incremental' })
    const incrementalMs = performance.now() - started

    const chats = APPLICATIONS * CHATS_PER_APPLICATION
    const isCorrect =
      full.chats.updated === chats &&
      Number(totals!.messages) === chats * MESSAGES_PER_CHAT &&
      incremental.chats.updated === CHATS_WITH_NEW_MESSAGES
    if (!isCorrect) {
      throw new Error(`unexpected reconcile results: ${JSON.stringify({ full, incremental })}`)
    }
    return {
      full_ms: Math.round(fullMs),
      incremental_ms: Math.round(incrementalMs * 10) / 10,
      chats: Number(totals!.chats),
      messages: Number(totals!.messages),
    }
  } finally {
    // The rows are only for this measurement: give the disk back.
    for (const table of ['messages', 'chats', 'applications'])
      await connection.query(`TRUNCATE TABLE ${table}`)
    await connection.end()
    await forgetKeys()
    await deps.close()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchReconcile().then(
    (figures) => process.stdout.write(`${JSON.stringify(figures)}\n`),
    (error) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
