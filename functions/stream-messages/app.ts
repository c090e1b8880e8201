import { streamSSE } from 'hono/streaming'
import { routes } from '../../lib/api/routes.ts'
import { streamQuery } from '../../lib/api/schemas.ts'
import { getChat } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { numberParam, queryParams, tokenParam } from '../../lib/http/validate.ts'
import type { LiveHub } from '../../lib/live/hub.ts'
import type { Logger } from '../../lib/logger.ts'

export type StreamMessagesDeps = { db: Db; logger: Logger; live: Pick<LiveHub, 'subscribe'> }

/** How long an EventSource waits before it reconnects (with its cursor) after the stream ends. */
const RECONNECT_MS = 1_000

export const createStreamMessagesApp = (deps: StreamMessagesDeps) =>
  createApi(deps.logger).get(routes.streamMessages.path, queryParams(streamQuery), async (c) => {
    const token = tokenParam(c)
    const chat = numberParam(c, 'chat')
    await getChat(deps, token, chat) // the JSON 404, before any stream starts
    const cursor = c.req.header('last-event-id') ?? c.get('query').last_event_id
    const subscription = await deps.live.subscribe(token, chat, cursor)
    const logger = c.get('logger')
    void subscription.ended.then((reason) => {
      if (reason === 'closed') return
      logger.info('live stream ended', { reason })
      // A client that stopped reading holds our last write forever: under Node, drop its socket (it
      // reconnects with its cursor). Lambda's response stream has no socket of ours to drop.
      if (reason === 'slow' || reason === 'shutdown') {
        ;(c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy()
      }
    })
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => subscription.close())
      await stream.write(`retry: ${RECONNECT_MS}\n\n`)
      for await (const item of subscription) {
        await stream.write(item.frame)
        if (stream.aborted) break
      }
    })
  })
