import type { MessageOutput } from '../api/schemas.ts'
import type { Redis } from '../redis.ts'
import { createScript } from '../redis-script.ts'

// The live log of a chat is a Redis Stream that every server reads. The consumer that persisted a
// batch appends the messages as MySQL holds them, through one script per chat that drops repeats
// (delivery is at-least-once) and appends in message-number order (batches commit in any order).
// See the README, "Decisions: live messages".

/** Retention the contract promises: every event of the last 10 minutes, and the last 1,000. */
export const KEEP_MS = 10 * 60_000
export const KEEP_EVENTS = 1_000
/** How long a number may hold the numbers after it back before the log gives up waiting for it. */
export const ORDER_WAIT_MS = 5_000
/** A chat's live keys vanish after this long without an event; a cursor into them then gets reset. */
export const IDLE_TTL_S = 24 * 3600
/** The next number a chat's log expects outlives its events: a chat back from idle does not wait for 1. */
const STATE_TTL_S = 30 * 24 * 3600
/** Published (number, version) pairs are remembered this long to drop repeated deliveries. */
const SEEN_MS = 15 * 60_000

/** The Redis Stream of a chat's events; braces keep a chat's keys in one Redis Cluster slot. */
export const liveStreamKey = (token: string, chat: number) => `live:{${token}}:${chat}`
/** Chats with events held back for a missing number: `token:chat` members. */
export const HELD_CHATS_KEY = 'live:{held}'

const chatKeys = (token: string, chat: number) => {
  const stream = liveStreamKey(token, chat)
  return [stream, `${stream}:state`, `${stream}:held`, `${stream}:seen`]
}

// KEYS: stream, state (hash: next number, since, h:<n> held data, hv:<n> held version), held (zset
// of held numbers), seen (zset: number -> last published version).
// ARGV: order wait ms, idle ttl s, keep ms, keep events, seen ms, state ttl s, then (number, version, data)*
// sorted by number. Returns {events appended, ms since events are held (0: none held)}.
const PUBLISH = `
local stream, state, held, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local waitMs, ttl, keepMs, keepEvents, seenMs, stateTtl =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local isNew = redis.call('EXISTS', stream) == 0
local nextNumber = tonumber(redis.call('HGET', state, 'next') or '1')
local appended = 0

local function append(n, version, data)
  local id = redis.call('XADD', stream, '*', 'd', data)
  -- A new log says that everything before it is gone: a cursor from an expired log gets reset.
  if isNew then redis.call('XSETID', stream, id, 'MAXDELETEDID', id) isNew = false end
  redis.call('ZADD', seen, version, n)
  appended = appended + 1
end

local function drain()
  while true do
    local data = redis.call('HGET', state, 'h:' .. nextNumber)
    if not data then return end
    append(nextNumber, tonumber(redis.call('HGET', state, 'hv:' .. nextNumber)), data)
    redis.call('HDEL', state, 'h:' .. nextNumber, 'hv:' .. nextNumber)
    redis.call('ZREM', held, nextNumber)
    nextNumber = nextNumber + 1
  end
end

local before = nextNumber
for i = 7, #ARGV, 3 do
  local n, version, data = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]
  if version > tonumber(redis.call('ZSCORE', seen, n) or '0') then
    if n < nextNumber then
      append(n, version, data)
    else
      local heldVersion = tonumber(redis.call('HGET', state, 'hv:' .. n) or '0')
      if n == nextNumber and version > heldVersion then
        -- The number the log waits for: appended now, not held and drained (7 commands fewer).
        if heldVersion > 0 then
          redis.call('HDEL', state, 'h:' .. n, 'hv:' .. n)
          redis.call('ZREM', held, n)
        end
        append(n, version, data)
        nextNumber = n + 1
      elseif version > heldVersion then
        redis.call('HSET', state, 'h:' .. n, data, 'hv:' .. n, version)
        redis.call('ZADD', held, n, n)
      end
    end
  end
end

drain()
local since = tonumber(redis.call('HGET', state, 'since') or '0')
local first = redis.call('ZRANGE', held, 0, 0)[1]
if first and (since == 0 or nextNumber ~= before) then since = now end
if first and now - since >= waitMs then
  -- The missing numbers are late or lost: publish what follows them; they append when they come.
  nextNumber = tonumber(first)
  drain()
  since = redis.call('ZRANGE', held, 0, 0)[1] and now or 0
elseif not first then
  since = 0
end
redis.call('HSET', state, 'next', nextNumber, 'since', since)

-- Keep the last keepMs and the last keepEvents, whichever is more; trim in steps (10 % past either
-- limit) so that the range scans run seldom.
if redis.call('XLEN', stream) > keepEvents * 1.1 then
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if oldest and tonumber(string.match(oldest[1], '^%d+')) < now - keepMs * 1.1 then
    local cut = (now - keepMs) .. '-0'
    local recent = #redis.call('XRANGE', stream, cut, '+', 'COUNT', keepEvents)
    if recent < keepEvents then
      local older = redis.call('XREVRANGE', stream, '(' .. cut, '-', 'COUNT', keepEvents - recent)
      cut = older[#older][1]
    end
    redis.call('XTRIM', stream, 'MINID', cut)
  end
end
redis.call('ZREMRANGEBYSCORE', seen, '-inf', (now - seenMs) * 1000)
for _, key in ipairs({stream, held, seen}) do redis.call('EXPIRE', key, ttl) end
redis.call('EXPIRE', state, stateTtl)
return {appended, since}
`

const publish = createScript(PUBLISH)

/** One message as persisted: its chat, the resource clients see, and the version MySQL holds. */
export interface LiveMessage {
  token: string
  chat: number
  message: MessageOutput
  version: number
}

/** What a chat's log keeps and how long it waits for a missing number; tests shrink them. */
export interface LogOptions {
  keepMs: number
  keepEvents: number
  orderWaitMs: number
}
const CONTRACT: LogOptions = { keepMs: KEEP_MS, keepEvents: KEEP_EVENTS, orderWaitMs: ORDER_WAIT_MS }

const runPublish = async (
  redis: Redis,
  token: string,
  chat: number,
  messages: LiveMessage[],
  options: LogOptions,
) => {
  const args = messages.flatMap((item) => [item.message.number, item.version, JSON.stringify(item.message)])
  const [, since] = await publish<[number, number]>(redis, chatKeys(token, chat), [
    options.orderWaitMs,
    IDLE_TTL_S,
    options.keepMs,
    options.keepEvents,
    SEEN_MS,
    STATE_TTL_S,
    ...args,
  ])
  const member = `${token}:${chat}`
  // Outside the script: another slot in a Redis Cluster. A stale member only costs a no-op release.
  await (since > 0 ? redis.zadd(HELD_CHATS_KEY, String(since), member) : redis.zrem(HELD_CHATS_KEY, member))
}

/**
 * Appends persisted messages to their chats' live logs, each (number, version) once, in number
 * order per chat. Call after the commit, with the rows as read back from MySQL.
 */
export const publishLiveMessages = async (redis: Redis, messages: LiveMessage[], options = CONTRACT) => {
  const byChat = new Map<string, LiveMessage[]>()
  for (const item of messages) {
    const key = `${item.token}:${item.chat}`
    const chat = byChat.get(key)
    if (chat) chat.push(item)
    else byChat.set(key, [item])
  }
  await Promise.all(
    [...byChat.values()].map((items) =>
      runPublish(
        redis,
        items[0]!.token,
        items[0]!.chat,
        items.sort((a, b) => a.message.number - b.message.number),
        options,
      ),
    ),
  )
}

/** Publishes what waited too long for a missing number, in chats where nothing else arrives. */
export const releaseHeldMessages = async (redis: Redis, options = CONTRACT) => {
  const members = await redis.zrange(HELD_CHATS_KEY, '0', '99')
  await Promise.all(
    members.map((member) => {
      const [token, chat] = member.split(':') as [string, string]
      return runPublish(redis, token, Number(chat), [], options)
    }),
  )
}
