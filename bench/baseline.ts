// The bare baselines, in a process of their own: Hono on @hono/node-server with nothing of the
// project's (no middleware, no validation library, no drizzle), and mysql2 running the same SQL as
// the project's read paths. Answers:
//   POST /noop                       parses the JSON body, answers 202
//   GET  /health                     answers {"status":"ok"}
//   GET  /applications/:token        the application lookup by its unique token
//   GET  /applications/:token/chats/:chat                      the chat, joined to its application
//   GET  /applications/:token/chats/:chat/messages?after=&limit=  a keyset page of messages
// Sends its port to the parent over IPC.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import mysql, { type RowDataPacket } from 'mysql2/promise'

const pool = mysql.createPool({
  uri: process.env.DATABASE_URL,
  connectionLimit: Number(process.env.DATABASE_POOL_SIZE ?? 10),
  charset: 'utf8mb4_unicode_520_ci',
  timezone: 'Z',
  supportBigNumbers: true,
})

const iso = (value: Date) => value.toISOString()

const app = new Hono()
  .post('/noop', async (c) => {
    const body = (await c.req.json()) as { body?: unknown }
    if (typeof body?.body !== 'string') return c.json({ error: 'body' }, 422)
    return c.json({ number: 1 }, 202)
  })
  .get('/health', (c) => c.json({ status: 'ok' }))
  .get('/applications/:token', async (c) => {
    const [rows] = await pool.query<RowDataPacket[]>(
      'select `token`, `name`, `chats_count`, `created_at`, `updated_at` from `applications` where `applications`.`token` = ? limit ?',
      [c.req.param('token'), 1],
    )
    const row = rows[0]
    if (!row) return c.json({ error: 'not found' }, 404)
    return c.json({
      token: row.token,
      name: row.name,
      chats_count: row.chats_count,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    })
  })
  .get('/applications/:token/chats/:chat', async (c) => {
    const [rows] = await pool.query<RowDataPacket[]>(
      'select `chats`.`number`, `chats`.`title`, `chats`.`messages_count`, `chats`.`created_at`, `chats`.`updated_at` from `applications` inner join `chats` on `chats`.`application_id` = `applications`.`id` where (`applications`.`token` = ? and `chats`.`number` = ?) limit ?',
      [c.req.param('token'), Number(c.req.param('chat')), 1],
    )
    const row = rows[0]
    if (!row) return c.json({ error: 'not found' }, 404)
    return c.json({
      number: row.number,
      title: row.title,
      messages_count: row.messages_count,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    })
  })
  .get('/applications/:token/chats/:chat/messages', async (c) => {
    const limit = Number(c.req.query('limit') ?? 20)
    const [rows] = await pool.query<RowDataPacket[]>(
      'select `messages`.`number`, `messages`.`body`, `messages`.`created_at`, `messages`.`updated_at` from `applications` inner join `chats` on `chats`.`application_id` = `applications`.`id` inner join `messages` on `messages`.`chat_id` = `chats`.`id` where (`applications`.`token` = ? and `chats`.`number` = ? and `messages`.`number` > ?) order by `messages`.`number` asc limit ?',
      [c.req.param('token'), Number(c.req.param('chat')), Number(c.req.query('after') ?? 0), limit + 1],
    )
    const data = rows.slice(0, limit).map((row) => ({
      number: row.number,
      body: row.body,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    }))
    return c.json({ data, next_after: rows.length > limit ? data[data.length - 1]!.number : null })
  })

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: '127.0.0.1' }, (info) =>
  // To the parent over IPC; on stderr when started by hand (e.g. under a profiler).
  process.send ? process.send(info.port) : process.stderr.write(`READY ${info.port}\n`),
)
process.once('SIGTERM', () => process.exit(0))
