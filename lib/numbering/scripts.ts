import { MAX_NUMBER } from '../api/schemas.ts'
import { createScript } from '../redis-script.ts'

// The Lua scripts of numbering (see accept.ts for the keys and the flow), as string constants:
// they travel with the module under Node's type stripping and through the Lambda bundler alike.

/** Shared head of every script: resolve the application and the chat counter, or ask for a seed. */
const PRELUDE = `
local app = redis.call('GET', KEYS[1])
if not app then return {'seed_app'} end
if app == '0' then return {'no_app'} end
local chats = redis.call('HGET', KEYS[2], 'n')
if not chats then return {'seed_chats', app} end
-- Counts a write in the application's one-second window, once it is known to be a new write.
local function over_limit()
  local limit = tonumber(ARGV[3])
  if limit == 0 then return nil end
  local used = redis.call('INCR', KEYS[4])
  if used == 1 or redis.call('PTTL', KEYS[4]) < 0 then redis.call('PEXPIRE', KEYS[4], 1000) end
  if used > limit then return {'rate_limited', app, tostring(redis.call('PTTL', KEYS[4]))} end
  return nil
end
local function next_version()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local prev = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
  if now <= prev then now = prev + 1 end
  local s = string.format('%.0f', now)
  redis.call('HSET', KEYS[2], 'v', s)
  return s
end
local function replay(fingerprint)
  if fingerprint == '' then return nil end
  local record = redis.call('GET', KEYS[3])
  if not record then return nil end
  local seen, number, version = string.match(record, '^([^|]*)|(%d+)|(%d+)$')
  if seen ~= fingerprint then return {'conflict', app} end
  return {'replay', app, number, version}
end
local function remember(fingerprint, number, version)
  if fingerprint ~= '' then
    redis.call('SET', KEYS[3], fingerprint .. '|' .. number .. '|' .. version, 'EX', ARGV[2])
  end
end
`

/**
 * The tail of both creates: a replay under the Idempotency-Key, else the exhaustion check, the rate
 * limit, then a version and the next number of the counter field (whose last value is `last`).
 */
const TAKE = `
local function take(field, last)
  local seen = replay(ARGV[1])
  if seen then return seen end
  if tonumber(last) >= ${MAX_NUMBER} then return {'exhausted', app} end
  local limited = over_limit()
  if limited then return limited end
  local version = next_version()
  local number = tostring(redis.call('HINCRBY', KEYS[2], field, 1))
  remember(ARGV[1], number, version)
  return {'ok', app, number, version}
end
`

/** KEYS: app, counters, idempotency, rate. ARGV: fingerprint ('' = none), ttl, rate limit. */
const CREATE_CHAT = `${PRELUDE}${TAKE}
local reply = take('n', chats)
-- A new chat's message counter starts at 0, so its first message needs no seed.
if reply[1] == 'ok' then redis.call('HSETNX', KEYS[2], 'm:' .. reply[3], 0) end
return reply
`

/** KEYS: app, counters, idempotency, rate. ARGV: fingerprint ('' = none), ttl, rate limit, chat. */
const CREATE_MESSAGE = `${PRELUDE}${TAKE}
if tonumber(ARGV[4]) > tonumber(chats) then return {'no_chat', app} end
local field = 'm:' .. ARGV[4]
local last = redis.call('HGET', KEYS[2], field)
if not last then return {'seed_messages', app} end
return take(field, last)
`

/** KEYS: app, counters, (unused), rate. ARGV: -, -, rate limit, chat. */
const UPDATE_CHAT = `${PRELUDE}
if tonumber(ARGV[4]) > tonumber(chats) then return {'no_chat', app} end
local limited = over_limit()
if limited then return limited end
return {'ok', app, ARGV[4], next_version()}
`

/** KEYS: app, counters, (unused), rate. ARGV: -, -, rate limit, chat, message. */
const UPDATE_MESSAGE = `${PRELUDE}
if tonumber(ARGV[4]) > tonumber(chats) then return {'no_chat', app} end
local last = redis.call('HGET', KEYS[2], 'm:' .. ARGV[4])
if not last then return {'seed_messages', app} end
if tonumber(ARGV[5]) > tonumber(last) then return {'no_message', app} end
local limited = over_limit()
if limited then return limited end
return {'ok', app, ARGV[5], next_version()}
`

export type Reply = [string, string?, string?, string?]
export type ScriptName = 'createChat' | 'createMessage' | 'updateChat' | 'updateMessage'

/** The numbering scripts, run by SHA (KEYS: application, counters, idempotency, rate). */
export const SCRIPTS: Record<ScriptName, ReturnType<typeof createScript>> = {
  createChat: createScript(CREATE_CHAT),
  createMessage: createScript(CREATE_MESSAGE),
  updateChat: createScript(UPDATE_CHAT),
  updateMessage: createScript(UPDATE_MESSAGE),
}
