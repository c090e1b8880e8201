import { MAX_NUMBER } from '../api/schemas.ts'
import { createScript } from '../redis-script.ts'

// The Lua script of numbering (see accept.ts for the keys and the flow), as a string constant: it
// travels with the module under Node's type stripping and through the Lambda bundler alike.

/** What a request asks of numbering; the script dispatches on it. */
export type NumberingKind = 'createChat' | 'createMessage' | 'updateChat' | 'updateMessage'

/** One request of a batch, as the script reads it. */
export interface NumberingRequest {
  kind: NumberingKind
  /** The request's idempotency key in Redis (any key of the application's slot when it has none). */
  idempotencyKey: string
  /** '' when the request has no Idempotency-Key. */
  fingerprint: string
  chat: number
  message: number
}

/** The script's answer to one request. */
export interface NumberingReply {
  status: string
  /** The application id ('0' for an unknown token, '' when Redis lacks it). */
  app: string
  number: string
  version: string
}

const FIELDS_PER_REQUEST = 4
const REPLY_PER_REQUEST = 3

/**
 * One call numbers a batch of requests of one application, in order, as if each ran alone.
 * KEYS: application, counters, rate, then one idempotency key per request.
 * ARGV: idempotency TTL (s), rate limit (0 = none), then per request: kind, body fingerprint
 * ('' = no Idempotency-Key), chat, message ('0' where the kind has none).
 * Reply: the application id ('' when Redis lacks it), then per request: status, number, version ('' if none).
 */
const NUMBER_BATCH = `
local count = (#ARGV - 2) / ${FIELDS_PER_REQUEST}
local reply = {}
local function answer(status, number, version)
  reply[#reply + 1] = status
  reply[#reply + 1] = number or ''
  reply[#reply + 1] = version or ''
end

local app = redis.call('GET', KEYS[1])
local chats = app and app ~= '0' and redis.call('HGET', KEYS[2], 'n')
-- Without the application or its chat counter no request can go on: they all get the same answer.
local refusal = (not app and 'seed_app') or (app == '0' and 'no_app') or (not chats and 'seed_chats')
reply[1] = app or ''
if refusal then
  for _ = 1, count do answer(refusal) end
  return reply
end
chats = tonumber(chats)

local limit = tonumber(ARGV[2])
-- Counts a write in the application's one-second window, once it is known to be a new write;
-- returns the milliseconds left in the window when it is over the limit.
local function over_limit()
  if limit == 0 then return nil end
  local used = redis.call('INCR', KEYS[3])
  if used == 1 or redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], 1000) end
  if used > limit then return redis.call('PTTL', KEYS[3]) end
  return nil
end

-- Versions are Redis time in microseconds, above the last one handed out. The last one is read once
-- and written back once, at the end: nothing else runs while a script does.
local last_version
local function next_version()
  if not last_version then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    last_version = math.max(now - 1, tonumber(redis.call('HGET', KEYS[2], 'v') or '0'))
  end
  last_version = last_version + 1
  return string.format('%.0f', last_version)
end

-- The tail of both creates: a replay under the Idempotency-Key (a copy earlier in the same batch
-- counts), else the exhaustion check, the rate limit, then a version and the next number of the
-- counter field, whose last value is \`last\`.
local function take(key, fingerprint, field, last)
  if fingerprint ~= '' then
    local record = redis.call('GET', key)
    if record then
      local seen, number, version = string.match(record, '^([^|]*)|(%d+)|(%d+)$')
      if seen ~= fingerprint then return 'conflict' end
      return 'replay', number, version
    end
  end
  if tonumber(last) >= ${MAX_NUMBER} then return 'exhausted' end
  local wait = over_limit()
  if wait then return 'rate_limited', wait end
  local version = next_version()
  local number = redis.call('HINCRBY', KEYS[2], field, 1)
  if fingerprint ~= '' then
    redis.call('SET', key, fingerprint .. '|' .. number .. '|' .. version, 'EX', ARGV[1])
  end
  return 'ok', number, version
end

local function create_chat(key, fingerprint)
  local status, number, version = take(key, fingerprint, 'n', chats)
  if status == 'ok' then
    chats = number
    -- A new chat's message counter starts at 0, so its first message needs no seed.
    redis.call('HSETNX', KEYS[2], 'm:' .. number, 0)
  end
  return status, number, version
end

local function create_message(key, fingerprint, chat)
  if tonumber(chat) > chats then return 'no_chat' end
  local field = 'm:' .. chat
  local last = redis.call('HGET', KEYS[2], field)
  if not last then return 'seed_messages' end
  return take(key, fingerprint, field, last)
end

local function update_chat(_, _, chat)
  if tonumber(chat) > chats then return 'no_chat' end
  local wait = over_limit()
  if wait then return 'rate_limited', wait end
  return 'ok', chat, next_version()
end

local function update_message(_, _, chat, message)
  if tonumber(chat) > chats then return 'no_chat' end
  local last = redis.call('HGET', KEYS[2], 'm:' .. chat)
  if not last then return 'seed_messages' end
  if tonumber(message) > tonumber(last) then return 'no_message' end
  local wait = over_limit()
  if wait then return 'rate_limited', wait end
  return 'ok', message, next_version()
end

local kinds = {
  createChat = create_chat,
  createMessage = create_message,
  updateChat = update_chat,
  updateMessage = update_message,
}
for i = 1, count do
  local at = 2 + (i - 1) * ${FIELDS_PER_REQUEST}
  answer(kinds[ARGV[at + 1]](KEYS[3 + i], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]))
end
if last_version then redis.call('HSET', KEYS[2], 'v', string.format('%.0f', last_version)) end
return reply
`

/** The numbering script, run by SHA. */
export const numberBatch = createScript(NUMBER_BATCH)

/** A request's ARGV values, FIELDS_PER_REQUEST of them, in the order the script reads them. */
export const requestArgs = (request: NumberingRequest) => [
  request.kind,
  request.fingerprint,
  request.chat,
  request.message,
]

/** The answer to the request at `index` of the batch. */
export const replyOf = (reply: Array<string | number>, index: number): NumberingReply => {
  const at = 1 + index * REPLY_PER_REQUEST
  return {
    status: String(reply[at]),
    app: String(reply[0]),
    number: String(reply[at + 1]),
    version: String(reply[at + 2]),
  }
}
