import { randomUUID } from 'node:crypto'
import { Redis as RedisClient } from 'ioredis'
import { RateLimitedError, UnavailableError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { recordLiveWrite } from '../metrics.ts'
import { type Redis, withRedis } from '../redis.ts'
import { createScript } from '../redis-script.ts'
import { liveStreamKey, releaseHeldMessages } from './log.ts'

/**
 * What a stream writes, as Server-Sent Events bytes: a message event, a reset (cursor too old), or
 * a keep-alive comment. An event's bytes are encoded once and shared by all its subscribers.
 */
export interface LiveItem {
  kind: 'event' | 'reset' | 'ping'
  frame: Uint8Array
}

interface LiveEvent {
  id: string
  frame: Uint8Array
}

const encoder = new TextEncoder()
// The data is one line of JSON (JSON.stringify escapes newlines), so it fits one `data:` field.
const toEvent = (id: string, fields: string[]): LiveEvent => ({
  id,
  frame: encoder.encode(`id: ${id}\nevent: message\ndata: ${fields[fields.indexOf('d') + 1]}\n\n`),
})
const PING = encoder.encode(': ping\n\n')
const resetFrame = (id: string) => encoder.encode(`id: ${id}\nevent: reset\ndata: {}\n\n`)

/** One open stream: iterate it to write; it ends when the hub closes it (slow reader, shutdown, age). */
export interface LiveSubscription extends AsyncIterable<LiveItem> {
  close(): void
  /** Resolves with the reason when it ends, even while a write is stuck on a client that stopped reading. */
  readonly ended: Promise<EndReason>
}

/** 'closed' by the client or the caller; a 'slow' reader; 'expired' (LIVE_STREAM_MAX_S); 'shutdown'; 'failed' (Redis). */
export type EndReason = 'closed' | 'slow' | 'expired' | 'shutdown' | 'failed'

export interface LiveHub {
  /**
   * Opens a stream of a chat after `cursor` (or from now), counted against the application's cap.
   * Throws RateLimitedError past the cap, UnavailableError when Redis is down.
   */
  subscribe(token: string, chat: number, cursor?: string): Promise<LiveSubscription>
  /** Ends every stream and closes the reading connection. */
  close(): Promise<void>
}

export interface LiveHubOptions {
  redis: Redis
  redisUrl: string
  keyPrefix: string
  logger: Pick<Logger, 'warn'>
  streamsPerApplication: number
  pingIntervalMs: number
  queueLimit: number
  /** Streams end after this long (0: never), so that a Lambda answers before its timeout. */
  maxStreamMs: number
}

const CURSOR = /^(0|[1-9]\d{0,14})-(0|[1-9]\d{0,18})$/
const LEASE_MS = 60_000
const PAGE = 200
const RELEASE_INTERVAL_MS = 250
/** Subscriber writes the reader queues before it lets other I/O run (≈ 10 µs each here). */
const YIELD_AFTER_WRITES = 1_000

const compareDigits = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

/** Orders stream ids (`<ms>-<seq>`, no leading zeros): negative, zero or positive like a comparator. */
const compareIds = (a: string, b: string) => {
  const [am = '', as = ''] = a.split('-')
  const [bm = '', bs = ''] = b.split('-')
  return compareDigits(am, bm) || compareDigits(as, bs)
}

const openStreamsKey = (token: string) => `live:{${token}}:open`

// Open streams of an application across servers: members expire unless their server renews them,
// so a crashed server's streams stop counting after LEASE_MS.
const ACQUIRE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`
const RENEW = `
local time = redis.call('TIME')
local expires = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
`

const acquire = createScript(ACQUIRE)
const renew = createScript(RENEW)

interface Feed {
  /** The last id the reader saw; undefined until the tail is known. */
  position: string | undefined
  subscribers: Set<Subscriber>
}

interface Subscriber {
  token: string
  push(event: LiveEvent): void
  ping(): void
  end(reason: EndReason): void
}

/** The stream's tail and the newest id trimmed from it, or undefined when there is no stream. */
const streamInfo = async (redis: Redis, key: string) => {
  try {
    const reply = (await redis.xinfo('STREAM', key)) as unknown[]
    const field = (name: string) => String(reply[reply.indexOf(name) + 1])
    return { tail: field('last-generated-id'), trimmedUpTo: field('max-deleted-entry-id') }
  } catch (error) {
    if (/no such key/i.test(String((error as Error)?.message))) return undefined
    throw error
  }
}

/**
 * The live fan-out of one process: every subscriber of a chat shares one read, and all the chats
 * watched here are read by one blocking XREAD on a connection of its own (never the shared one).
 * Each subscriber has a bounded queue; one that overflows is ended, and the others never wait on it.
 */
export const createLiveHub = (options: LiveHubOptions): LiveHub => {
  const { redis, logger } = options
  const feeds = new Map<string, Feed>()
  const subscribers = new Map<string, Subscriber>()
  let blocking: RedisClient | undefined
  let blockingId: number | undefined
  let reader: Promise<void> | undefined
  let wakeIdle: (() => void) | undefined
  let readCycle = 0
  let isReading = false
  let isClosed = false
  let timers: NodeJS.Timeout[] = []

  const wakeReader = (cycle = readCycle) => {
    if (wakeIdle) {
      wakeIdle()
      wakeIdle = undefined
      return
    }
    // A blocked XREAD learns of a new chat only when it returns: end the wait now. An UNBLOCK that
    // arrives before the XREAD does is lost, so try again until the read cycle moves on.
    if (!isReading || blockingId === undefined || cycle !== readCycle) return
    redis.client('UNBLOCK', blockingId).then(
      (unblocked) => {
        if (unblocked === 0) setTimeout(() => wakeReader(cycle), 10).unref()
      },
      () => undefined,
    )
  }

  // A read hands each subscriber at most half its queue, so a burst alone never overflows it.
  const readCount = Math.max(1, Math.min(1000, Math.floor(options.queueLimit / 2)))
  const read = async (client: RedisClient) => {
    while (!isClosed) {
      const watched = [...feeds].filter(([, feed]) => feed.position !== undefined)
      if (watched.length === 0) {
        await new Promise<void>((resolve) => {
          wakeIdle = resolve
        })
        continue
      }
      readCycle++
      let reply: Array<[string, Array<[string, string[]]>]> | null
      try {
        blockingId ??= (await client.client('ID')) as number
        isReading = true
        reply = (await client.xread(
          'COUNT',
          readCount,
          'BLOCK',
          5000,
          'STREAMS',
          ...watched.map(([key]) => key),
          ...watched.map(([, feed]) => feed.position!),
        )) as typeof reply
      } catch (error) {
        if (isClosed) return
        logger.warn('live read failed; retrying', { err: error })
        blockingId = undefined
        await new Promise((resolve) => setTimeout(resolve, 500))
        continue
      } finally {
        isReading = false
      }
      let writesSinceYield = 0
      for (const [prefixedKey, entries] of reply ?? []) {
        const feed = feeds.get(prefixedKey.slice(options.keyPrefix.length))
        if (!feed) continue
        // Each subscriber's writes run as microtasks once this loop lets go: past a few thousand,
        // let other I/O (requests, new connections) run before the next chat's writes. Yielding
        // after every chat instead cost each later chat a turn of a busy event loop (tens of ms).
        if (writesSinceYield >= YIELD_AFTER_WRITES) {
          await new Promise((resolve) => setImmediate(resolve))
          writesSinceYield = 0
        }
        writesSinceYield += feed.subscribers.size
        for (const [id, fields] of entries) {
          feed.position = id
          const event = toEvent(id, fields)
          for (const subscriber of feed.subscribers) subscriber.push(event)
        }
      }
    }
  }

  const startBackground = () => {
    if (blocking) return
    blocking = new RedisClient(options.redisUrl, {
      keyPrefix: options.keyPrefix,
      lazyConnect: true,
      // Blocking reads wait up to 5 s: no command timeout here, and retry for as long as it takes.
      maxRetriesPerRequest: null,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    })
    blocking.on('error', () => undefined)
    // A reconnected connection has another id.
    blocking.on('ready', () => {
      blockingId = undefined
    })
    reader = read(blocking)
    const every = (ms: number, work: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        if (subscribers.size > 0) work().catch((error) => logger.warn('live upkeep failed', { err: error }))
      }, ms)
      timer.unref()
      timers.push(timer)
    }
    every(RELEASE_INTERVAL_MS, () => releaseHeldMessages(redis))
    every(options.pingIntervalMs, async () => {
      const byToken = new Map<string, string[]>()
      for (const [id, subscriber] of subscribers) {
        subscriber.ping()
        byToken.set(subscriber.token, [...(byToken.get(subscriber.token) ?? []), id])
      }
      await Promise.all(
        [...byToken].map(([token, ids]) => renew(redis, [openStreamsKey(token)], [LEASE_MS, ...ids])),
      )
    })
  }

  const subscribe = async (token: string, chat: number, cursor?: string): Promise<LiveSubscription> => {
    // Shutting down: another server takes the client.
    if (isClosed) throw new UnavailableError('this server is stopping; live streams are')
    const key = liveStreamKey(token, chat)
    const subscriptionId = randomUUID()
    const isAdmitted = await withRedis(() =>
      acquire<number>(
        redis,
        [openStreamsKey(token)],
        [subscriptionId, options.streamsPerApplication, LEASE_MS],
      ),
    )
    if (!isAdmitted) {
      throw new RateLimitedError(
        `this application has ${options.streamsPerApplication} open streams, the most allowed`,
        5,
      )
    }
    startBackground()

    const queue: LiveEvent[] = []
    let page: LiveEvent[] = []
    let last = '0-0'
    let backlogEnd: string | undefined
    let pendingReset: string | undefined
    let isPingDue = false
    let endReason: EndReason | undefined
    let resolveEnded: (reason: EndReason) => void = () => undefined
    const ended = new Promise<EndReason>((resolve) => {
      resolveEnded = resolve
    })
    let wake: (() => void) | undefined
    const notify = () => {
      wake?.()
      wake = undefined
    }
    const feed = feeds.get(key) ?? { position: undefined, subscribers: new Set() }
    feeds.set(key, feed)

    const end = (reason: EndReason) => {
      if (endReason) return
      endReason = reason
      resolveEnded(reason)
      feed.subscribers.delete(subscriber)
      if (feed.subscribers.size === 0 && feeds.get(key) === feed) feeds.delete(key)
      subscribers.delete(subscriptionId)
      queue.length = 0
      page = []
      notify()
      redis.zrem(openStreamsKey(token), subscriptionId).catch(() => undefined)
    }
    const subscriber: Subscriber = {
      token,
      push: (event) => {
        if (endReason) return
        queue.push(event)
        if (queue.length > options.queueLimit) end('slow')
        else notify()
      },
      ping: () => {
        isPingDue = true
        notify()
      },
      end,
    }
    // Registered before the tail is read: whatever is appended after that reaches this queue.
    feed.subscribers.add(subscriber)
    subscribers.set(subscriptionId, subscriber)
    try {
      const info = await withRedis(() => streamInfo(redis, key))
      const tail = info?.tail ?? '0-0'
      if (feed.position === undefined) {
        feed.position = tail
        wakeReader()
      }
      const isKnown =
        cursor !== undefined &&
        CURSOR.test(cursor) &&
        (info ? compareIds(cursor, info.trimmedUpTo) >= 0 : cursor === '0-0')
      if (cursor === undefined) last = tail
      else if (!isKnown) {
        pendingReset = tail
        last = tail
      } else {
        last = cursor
        if (compareIds(cursor, tail) < 0) backlogEnd = tail
      }
    } catch (error) {
      end('failed')
      throw error
    }
    if (options.maxStreamMs > 0) setTimeout(() => end('expired'), options.maxStreamMs).unref()

    const framesOf = (events: LiveEvent[]) => {
      last = events.at(-1)!.id
      return events.length === 1 ? events[0]!.frame : Buffer.concat(events.map((event) => event.frame))
    }
    const next = async (): Promise<IteratorResult<LiveItem>> => {
      for (;;) {
        if (endReason) return { done: true, value: undefined }
        if (pendingReset !== undefined) {
          const id = pendingReset
          pendingReset = undefined
          return { done: false, value: { kind: 'reset', frame: resetFrame(id) } }
        }
        if (isPingDue) {
          isPingDue = false
          return { done: false, value: { kind: 'ping', frame: PING } }
        }
        if (page.length > 0) {
          const events = page
          page = []
          return { done: false, value: { kind: 'event', frame: framesOf(events) } }
        }
        if (backlogEnd !== undefined) {
          // The backlog is read a page at a time as the client takes it; live events queue meanwhile.
          const end = backlogEnd
          try {
            const entries = await redis.xrange(key, `(${last}`, end, 'COUNT', PAGE)
            page = entries.map(([id, fields]) => toEvent(id, fields))
          } catch (error) {
            logger.warn('live backlog read failed', { err: error })
            subscriber.end('failed')
            continue
          }
          if (page.length < PAGE || page.at(-1)?.id === end) backlogEnd = undefined
          continue
        }
        // Whatever queued goes out in one write, less what the backlog already sent. The queue is in
        // id order: when its first event is new, all are (the common case, without a comparison each).
        const queued = queue.splice(0)
        const events =
          queued.length > 0 && compareIds(queued[0]!.id, last) > 0
            ? queued
            : queued.filter((event) => compareIds(event.id, last) > 0)
        if (events.length > 0) {
          // An id is the append time in ms, then a sequence number.
          recordLiveWrite((Date.now() - Number.parseInt(events[0]!.id, 10)) / 1000)
          return { done: false, value: { kind: 'event', frame: framesOf(events) } }
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    }
    return {
      [Symbol.asyncIterator]: () => ({
        next,
        return: async () => {
          end('closed')
          return { done: true, value: undefined }
        },
      }),
      close: () => end('closed'),
      ended,
    }
  }

  return {
    subscribe,
    close: async () => {
      if (isClosed) return
      isClosed = true
      for (const subscriber of subscribers.values()) subscriber.end('shutdown')
      for (const timer of timers) clearInterval(timer)
      timers = []
      wakeIdle?.()
      blocking?.disconnect()
      await reader
    },
  }
}
