import { routes } from '../../lib/api/routes.ts'
import { getChat } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { LiveHub, LiveSubscription } from '../../lib/live/hub.ts'
import type { Logger } from '../../lib/logger.ts'

export type StreamMessagesDeps = { db: Db; logger: Logger; live: Pick<LiveHub, 'subscribe'> }

/** The first bytes: how long an EventSource waits before it reconnects (with its cursor) after an end. */
const OPENING = new TextEncoder().encode('retry: 1000\n\n')

// Module-level, so that an open stream's closures hold the subscription and not the request context.

/**
 * A pull stream rather than streamSSE's pushed one: the server asks for the next bytes only once
 * the socket took the last, so a client that stops reading fills its bounded queue, not buffers;
 * and one stream layer instead of three costs less memory and CPU per subscriber (bench/live.ts).
 */
const toBody = (subscription: LiveSubscription) => {
  const events = subscription[Symbol.asyncIterator]()
  let isCancelled = false
  return new ReadableStream<Uint8Array>(
    {
      start: (controller) => controller.enqueue(OPENING),
      pull: async (controller) => {
        const next = await events.next()
        if (isCancelled) return
        if (next.done) controller.close()
        else controller.enqueue(next.value.frame)
      },
      cancel: () => {
        isCancelled = true
        subscription.close()
      },
    },
    { highWaterMark: 0 },
  )
}

/**
 * A client that stopped reading holds our last write forever: under Node, drop its socket (it
 * reconnects with its cursor). Lambda's response stream has no socket of ours to drop.
 */
const dropWhenEnded = (
  subscription: LiveSubscription,
  outgoing: { destroy(): void } | undefined,
  logger: Logger,
) =>
  subscription.ended.then((reason) => {
    if (reason === 'closed') return
    logger.info('live stream ended', { reason })
    if (reason === 'slow' || reason === 'shutdown') outgoing?.destroy()
  })

export const createStreamMessagesApp = (deps: StreamMessagesDeps) =>
  defineRoute(createApi(deps.logger), routes.streamMessages, async (c) => {
    const { token, chat } = c.req.valid('param')
    await getChat(deps, token, chat) // the JSON 404, before any stream starts
    const cursor = c.req.header('last-event-id') ?? c.req.valid('query').last_event_id
    const subscription = await deps.live.subscribe(token, chat, cursor)
    void dropWhenEnded(
      subscription,
      (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing,
      c.get('logger'),
    )
    return c.body(toBody(subscription), 200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
    })
  })
