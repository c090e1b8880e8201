// The reads' data, written straight into MySQL: an application with two chats, the first of
// CHAT_DEPTH messages (the reads section reads it; the search section indexes it), the second empty
// (the raw upserts' baseline writes into it).
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { CHAT_DEPTH } from './harness.ts'
import { benchBody } from './persistence.ts'

/** An application with a chat of CHAT_DEPTH messages, straight into MySQL: the reads' data. */
export const seedReadData = async (databaseUrl: string) => {
  const pool = mysql.createPool({ uri: databaseUrl, connectionLimit: 4, timezone: 'Z' })
  const token = randomBytes(24).toString('base64url')
  const now = new Date()
  const [app] = (await pool.query(
    'INSERT INTO applications (token, name, chats_count, created_at, updated_at) VALUES (?, ?, 2, ?, ?)',
    [token, 'bench reads', now, now],
  )) as unknown as [{ insertId: number }]
  const chatIds: number[] = []
  for (const number of [1, 2]) {
    const [chat] = (await pool.query(
      'INSERT INTO chats (application_id, number, title, messages_count, created_at, updated_at, create_version) VALUES (?, ?, ?, ?, ?, ?, 1)',
      [app.insertId, number, `chat ${number}`, number === 1 ? CHAT_DEPTH : 0, now, now],
    )) as unknown as [{ insertId: number }]
    chatIds.push(chat.insertId)
  }
  const SLICE = 5_000
  await Promise.all(
    Array.from({ length: 4 }, async (_, worker) => {
      for (let from = worker * SLICE; from < CHAT_DEPTH; from += 4 * SLICE) {
        const rows = []
        for (let i = from; i < Math.min(CHAT_DEPTH, from + SLICE); i++)
          rows.push([chatIds[0], i + 1, benchBody(i), 1, now, now, 1])
        await pool.query(
          'INSERT INTO messages (chat_id, number, body, body_version, created_at, updated_at, create_version) VALUES ?',
          [rows],
        )
      }
    }),
  )
  await pool.end()
  return { token, chatId: chatIds[0]!, spareChatId: chatIds[1]!, applicationId: app.insertId }
}
