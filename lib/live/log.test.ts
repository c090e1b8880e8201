import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDeps } from '../../tests/harness.ts'
import type { Deps } from '../deps.ts'
import {
  KEEP_EVENTS,
  KEEP_MS,
  type LiveMessage,
  liveStreamKey,
  publishLiveMessages,
  releaseHeldMessages,
} from './log.ts'

describe('the live log of a chat', () => {
  let deps: Deps

  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterAll(() => deps.close())

  // Versions are microseconds of the time the API accepted the write.
  const T0 = Date.now() * 1000
  const newChat = () => ({ token: randomBytes(24).toString('base64url'), chat: 1 })
  const message = (
    chat: { token: string; chat: number },
    number: number,
    version = number,
    body = `m${number}`,
  ) =>
    ({
      ...chat,
      version: T0 + version,
      message: {
        number,
        body,
        created_at: '2026-12-01T00:00:00.000Z',
        updated_at: '2026-12-01T00:00:00.000Z',
      },
    }) satisfies LiveMessage
  const logged = async (chat: { token: string; chat: number }) =>
    (await deps.redis.xrange(liveStreamKey(chat.token, chat.chat), '-', '+')).map(([, fields]) => {
      const data = JSON.parse(fields[1]!) as { number: number; body: string }
      return `${data.number}:${data.body}`
    })

  it('appends in number order when batches commit out of order', async () => {
    const chat = newChat()

    await publishLiveMessages(deps.redis, [message(chat, 3), message(chat, 5)])
    const held = await logged(chat)
    await publishLiveMessages(deps.redis, [message(chat, 2), message(chat, 1)])
    await publishLiveMessages(deps.redis, [message(chat, 4)])

    expect(held).toEqual([])
    expect(await logged(chat)).toEqual(['1:m1', '2:m2', '3:m3', '4:m4', '5:m5'])
  })

  it('appends the newer of a held version and the one that comes with its number, once, and nothing held stays behind', async () => {
    const newerArrives = newChat()
    const olderArrives = newChat()

    await publishLiveMessages(deps.redis, [message(newerArrives, 2)])
    await publishLiveMessages(deps.redis, [message(newerArrives, 1), message(newerArrives, 2, 20, 'edited')])
    await publishLiveMessages(deps.redis, [message(olderArrives, 2, 20, 'edited')])
    await publishLiveMessages(deps.redis, [message(olderArrives, 1), message(olderArrives, 2)])
    await publishLiveMessages(deps.redis, [message(newerArrives, 3), message(olderArrives, 3)])

    expect(await logged(newerArrives)).toEqual(['1:m1', '2:edited', '3:m3'])
    expect(await logged(olderArrives)).toEqual(['1:m1', '2:edited', '3:m3'])
    for (const chat of [newerArrives, olderArrives]) {
      expect(await deps.redis.zcard(`${liveStreamKey(chat.token, chat.chat)}:held`)).toBe(0)
    }
  })

  it('appends each (number, version) once, and a newer version again', async () => {
    const chat = newChat()

    await publishLiveMessages(deps.redis, [message(chat, 1), message(chat, 2)])
    await publishLiveMessages(deps.redis, [message(chat, 1), message(chat, 2)])
    await publishLiveMessages(deps.redis, [message(chat, 2, 20, 'edited')])
    await publishLiveMessages(deps.redis, [message(chat, 2, 20, 'edited'), message(chat, 2, 2)])

    expect(await logged(chat)).toEqual(['1:m1', '2:m2', '2:edited'])
  })

  it('gives up waiting for a missing number after a while, and appends it when it comes late', async () => {
    const chat = newChat()
    const options = { keepMs: KEEP_MS, keepEvents: KEEP_EVENTS, orderWaitMs: 300 }

    await publishLiveMessages(deps.redis, [message(chat, 2), message(chat, 3)], options)
    const held = await logged(chat)
    await new Promise((resolve) => setTimeout(resolve, 400))
    await releaseHeldMessages(deps.redis, options)
    const released = await logged(chat)
    await publishLiveMessages(deps.redis, [message(chat, 1), message(chat, 4)], options)

    expect(held).toEqual([])
    expect(released).toEqual(['2:m2', '3:m3'])
    expect(await logged(chat)).toEqual(['2:m2', '3:m3', '1:m1', '4:m4'])
  })

  it('keeps the last events and records the newest trimmed id', async () => {
    const chat = newChat()
    const key = liveStreamKey(chat.token, chat.chat)

    for (let number = 1; number <= 30; number++) {
      await publishLiveMessages(deps.redis, [message(chat, number)], {
        keepMs: 0,
        keepEvents: 10,
        orderWaitMs: 1_000,
      })
    }
    const info = (await deps.redis.xinfo('STREAM', key)) as unknown[]
    const ids = (await deps.redis.xrange(key, '-', '+')).map(([id]) => id)

    expect((await logged(chat)).at(-1)).toBe('30:m30')
    expect(ids.length).toBeGreaterThanOrEqual(10)
    expect(ids.length).toBeLessThanOrEqual(11)
    expect(String(info[info.indexOf('max-deleted-entry-id') + 1])).not.toBe(ids[0])
    expect(await deps.redis.ttl(key)).toBeGreaterThan(3600)
  })
})
