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
  /** The application id (0 for an unknown token or when Redis lacks it). */
  app: number
  /** The number; for 'rate_limited', the milliseconds left in the window. */
  number: number
  version: number
}

const FIELDS_PER_REQUEST = 4
const REPLY_PER_REQUEST = 3

/**
 * One call numbers a batch of requests of one application, in order, as if each ran alone.
 * KEYS: application, counters, rate, then one idempotency key per request.
 * ARGV: idempotency TTL (s), rate limit (0 = none), then per request: kind, body fingerprint
 * ('' = no Idempotency-Key), chat, message ('0' where the kind has none).
 * Reply: the application id ('' when Redis lacks it), then per request: status, number, version
 * ('' where there is none). Numbers go out as Lua numbers (integer replies): a string.format per
 * request cost Redis more than all the rest of the request's work.
 */
const NUMBER_BATCH = `
local count = (#ARGV - 2) / ${FIELDS_PER_REQUEST}
local reply = {}
local size = 1
local function answer(status, number, version)
  reply[size + 1], reply[size + 2], reply[size + 3] = status, number or '', version or ''
  size = size + 3
end
local function str(n) return string.format('%.0f', n) end

local app = redis.call('GET', KEYS[1])
local chats = app and app ~= '0' and redis.call('HGET', KEYS[2], 'n')
-- Without the application or its chat counter no request can go on: they all get the same answer.
local refusal = (not app and 'seed_app') or (app == '0' and 'no_app') or (not chats and 'seed_chats')
reply[1] = app or ''
if refusal then
  for _ = 1, count do answer(refusal) end
  return reply
end

-- State is read on first use, kept here while the batch runs and written back once, at the end:
-- nothing else runs while a script does, and a script that fails half-way writes nothing.
local counters = { n = tonumber(chats) } -- fields of the counters hash; false: Redis lacks it
local changed = {}
local records = {} -- idempotency records to write, by key
local function counter(field)
  local value = counters[field]
  if value == nil then
    value = tonumber(redis.call('HGET', KEYS[2], field)) or false
    counters[field] = value
  end
  return value
end
local function set_counter(field, value)
  counters[field] = value
  changed[field] = true
end

-- Counts a write in the application's one-second window, once it is known to be a new write;
-- returns the milliseconds left in the window when it is over the limit.
local limit = tonumber(ARGV[2])
local used, counted, window, fresh_window
local function over_limit()
  if limit == 0 then return nil end
  if not used then
    used = tonumber(redis.call('GET', KEYS[3]) or '0')
    counted = used
    window = redis.call('PTTL', KEYS[3])
  end
  used = used + 1
  if window < 0 then window, fresh_window = 1000, true end
  if used > limit then return window end
  return nil
end

-- Redis time in microseconds, forced above the last version handed out.
local now
local function next_version()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local version = math.max(now, (counter('v') or 0) + 1)
  set_counter('v', version)
  return version
end

-- The tail of both creates: a replay under the Idempotency-Key (a copy earlier in the batch
-- counts), else the exhaustion check, the rate limit, then a version and the counter's next number.
local function take(key, fingerprint, field)
  if fingerprint ~= '' then
    local record = records[key] or redis.call('GET', key)
    if record then
      local seen, number, version = string.match(record, '^([^|]*)|(%d+)|(%d+)$')
      if seen ~= fingerprint then return 'conflict' end
      return 'replay', number, version
    end
  end
  local last = counter(field)
  if last >= ${MAX_NUMBER} then return 'exhausted' end
  local wait = over_limit()
  if wait then return 'rate_limited', wait end
  local version = next_version()
  local number = last + 1
  set_counter(field, number)
  if fingerprint ~= '' then records[key] = fingerprint .. '|' .. number .. '|' .. str(version) end
  return 'ok', number, version
end

local function create_chat(key, fingerprint)
  local status, number, version = take(key, fingerprint, 'n')
  -- A new chat's message counter starts at 0, so its first message needs no seed.
  if status == 'ok' and not counter('m:' .. number) then set_counter('m:' .. number, 0) end
  return status, number, version
end

local function create_message(key, fingerprint, chat)
  if tonumber(chat) > counter('n') then return 'no_chat' end
  local field = 'm:' .. chat
  if not counter(field) then return 'seed_messages' end
  return take(key, fingerprint, field)
end

local function update_chat(_, _, chat)
  if tonumber(chat) > counter('n') then return 'no_chat' end
  local wait = over_limit()
  if wait then return 'rate_limited', wait end
  return 'ok', chat, next_version()
end

local function update_message(_, _, chat, message)
  if tonumber(chat) > counter('n') then return 'no_chat' end
  local last = counter('m:' .. chat)
  if not last then return 'seed_messages' end
  if tonumber(message) > last then return 'no_message' end
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

-- Redis writes a number argument with 17 digits, exactly, where string.format would cost more.
local fields = {}
for field in pairs(changed) do
  fields[#fields + 1] = field
  fields[#fields + 1] = counters[field]
end
if #fields > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
for key, record in pairs(records) do redis.call('SET', key, record, 'EX', ARGV[1]) end
if used and used > counted then
  redis.call('INCRBY', KEYS[3], used - counted)
  if fresh_window then redis.call('PEXPIRE', KEYS[3], 1000) end
end
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
    app: Number(reply[0]),
    number: Number(reply[at + 1]),
    version: Number(reply[at + 2]),
  }
}
