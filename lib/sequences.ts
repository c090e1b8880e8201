import { createHash } from 'node:crypto'
import { and, eq, max } from 'drizzle-orm'
import { applications, chats, messages } from '../db/schema.ts'
import { MAX_NUMBER } from './api/schemas.ts'
import type { Config } from './config.ts'
import { type Db, withDatabase } from './db.ts'
import {
  IdempotencyKeyReusedError,
  NotFoundError,
  NumbersExhaustedError,
  RateLimitedError,
  UnavailableError,
} from './errors.ts'
import { applicationKey, countersKey, idempotencyKey, rateKey } from './keys.ts'
import type { Redis } from './redis.ts'
import { withRedis } from './redis.ts'

// Numbering lives in Redis. Per application token there are two keys in one Cluster slot:
//   a:{token}  the application id ('0' for a token known not to exist, for a minute)
//   n:{token}  a hash: n = last chat number, m:<chat> = last message number of that chat,
//              v = last version handed out in this application
// Each create or update is ONE script call: it checks that the parent exists, counts the write
// against the application's rate limit, honours the Idempotency-Key, and hands out the number and
// a version. A version is Redis time in
// microseconds, forced above the previous one, so versions order the writes of an application in
// the order the API accepted them, across any number of servers; consumers keep the highest.
//
// A missing key means Redis has never seen the application (it was created before Redis lost its
// data, or it does not exist): the script says what to seed, the caller reads MySQL once, seeds
// with HSETNX/SET NX (so concurrent seeders agree) and calls the script again.

const IDEMPOTENCY_TTL_S = 24 * 60 * 60
const NEGATIVE_TTL_S = 60

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

/** KEYS: app, counters, idempotency, rate. ARGV: fingerprint ('' = none), ttl, rate limit. */
const CREATE_CHAT = `${PRELUDE}
local seen = replay(ARGV[1])
if seen then return seen end
if tonumber(chats) >= ${MAX_NUMBER} then return {'exhausted', app} end
local limited = over_limit()
if limited then return limited end
local version = next_version()
local number = tostring(redis.call('HINCRBY', KEYS[2], 'n', 1))
redis.call('HSETNX', KEYS[2], 'm:' .. number, 0)
remember(ARGV[1], number, version)
return {'ok', app, number, version}
`

/** KEYS: app, counters, idempotency, rate. ARGV: fingerprint ('' = none), ttl, rate limit, chat. */
const CREATE_MESSAGE = `${PRELUDE}
if tonumber(ARGV[4]) > tonumber(chats) then return {'no_chat', app} end
local field = 'm:' .. ARGV[4]
local last = redis.call('HGET', KEYS[2], field)
if not last then return {'seed_messages', app} end
local seen = replay(ARGV[1])
if seen then return seen end
if tonumber(last) >= ${MAX_NUMBER} then return {'exhausted', app} end
local limited = over_limit()
if limited then return limited end
local version = next_version()
local number = tostring(redis.call('HINCRBY', KEYS[2], field, 1))
remember(ARGV[1], number, version)
return {'ok', app, number, version}
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

/** KEYS: counters. ARGV: field, number. Raises a counter that exists to at least `number`. */
const RAISE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(current) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
`

type Reply = [string, string?, string?, string?]
type ScriptName = 'createChat' | 'createMessage' | 'updateChat' | 'updateMessage'
type ScriptedRedis = Redis &
  Record<ScriptName, (...args: string[]) => Promise<Reply>> & {
    raiseCounter(key: string, field: string, number: string): Promise<number>
  }

const defined = new WeakSet<Redis>()

const scripted = (redis: Redis): ScriptedRedis => {
  if (!defined.has(redis)) {
    redis.defineCommand('createChat', { numberOfKeys: 4, lua: CREATE_CHAT })
    redis.defineCommand('createMessage', { numberOfKeys: 4, lua: CREATE_MESSAGE })
    redis.defineCommand('updateChat', { numberOfKeys: 4, lua: UPDATE_CHAT })
    redis.defineCommand('updateMessage', { numberOfKeys: 4, lua: UPDATE_MESSAGE })
    redis.defineCommand('raiseCounter', { numberOfKeys: 1, lua: RAISE })
    defined.add(redis)
  }
  return redis as ScriptedRedis
}

export interface SequenceDeps {
  redis: Redis
  db: Db
  /** An upper bound on the jobs accepted but not yet persisted (queued); added to a re-seed. */
  inFlightJobs: () => Promise<number>
  config: Pick<Config, 'WRITE_RATE_LIMIT_PER_S'>
}

export interface Accepted {
  applicationId: number
  number: number
  version: number
}

export interface Idempotency {
  key: string
  /** The request body, canonicalized by the caller; a different one under the same key is a 422. */
  body: unknown
}

const fingerprintOf = (idempotency?: Idempotency) =>
  idempotency ? createHash('sha256').update(JSON.stringify(idempotency.body)).digest('base64url') : ''

const seedApplication = async (deps: SequenceDeps, token: string) => {
  const [row] = await withDatabase(() =>
    deps.db.select({ id: applications.id }).from(applications).where(eq(applications.token, token)).limit(1),
  )
  await withRedis(() =>
    row
      ? deps.redis.set(applicationKey(token), String(row.id))
      : deps.redis.set(applicationKey(token), '0', 'EX', NEGATIVE_TTL_S, 'NX'),
  )
}

const inFlight = (deps: SequenceDeps) =>
  deps.inFlightJobs().catch((error) => {
    throw new UnavailableError('the queue is', { cause: error })
  })

// A re-seed starts above the highest persisted number plus every job still queued: jobs in flight
// may hold numbers MySQL does not show yet. The queue is counted before MySQL is read, so a job
// that leaves the queue in between is already in MySQL. Gaps are acceptable; duplicates never.
const seedChats = async (deps: SequenceDeps, token: string, applicationId: number) => {
  const queued = await inFlight(deps)
  const [row] = await withDatabase(() =>
    deps.db
      .select({ last: max(chats.number) })
      .from(chats)
      .where(eq(chats.applicationId, applicationId)),
  )
  await withRedis(() => deps.redis.hsetnx(countersKey(token), 'n', String((row?.last ?? 0) + queued)))
}

const seedMessages = async (deps: SequenceDeps, token: string, applicationId: number, chat: number) => {
  const queued = await inFlight(deps)
  const [row] = await withDatabase(() =>
    deps.db
      .select({ last: max(messages.number) })
      .from(messages)
      .innerJoin(chats, eq(chats.id, messages.chatId))
      .where(and(eq(chats.applicationId, applicationId), eq(chats.number, chat))),
  )
  await withRedis(() => deps.redis.hsetnx(countersKey(token), `m:${chat}`, String((row?.last ?? 0) + queued)))
}

/** Runs a numbering script, seeding what Redis lacks from MySQL, until it answers. */
const runScript = async (
  deps: SequenceDeps,
  script: ScriptName,
  token: string,
  scope: string,
  idempotency: Idempotency | undefined,
  args: number[],
): Promise<Accepted> => {
  const redis = scripted(deps.redis)
  const fingerprint = fingerprintOf(idempotency)
  const keys = [
    applicationKey(token),
    countersKey(token),
    idempotencyKey(token, scope, idempotency?.key ?? ''),
    rateKey(token),
  ]
  for (let attempt = 0; attempt < 4; attempt++) {
    const [status, app, number, version] = await withRedis(() =>
      redis[script](
        ...keys,
        fingerprint,
        String(IDEMPOTENCY_TTL_S),
        String(deps.config.WRITE_RATE_LIMIT_PER_S),
        ...args.map(String),
      ),
    )
    const applicationId = Number(app)
    switch (status) {
      case 'ok':
      case 'replay':
        return { applicationId, number: Number(number), version: Number(version) }
      case 'no_app':
        throw new NotFoundError('application not found')
      case 'no_chat':
        throw new NotFoundError(`chat ${args[0]} not found`)
      case 'no_message':
        throw new NotFoundError(`message ${args[1]} not found`)
      case 'rate_limited':
        throw new RateLimitedError(
          `over ${deps.config.WRITE_RATE_LIMIT_PER_S} writes a second for this application; retry shortly`,
          Math.max(1, Math.ceil(Number(number) / 1000)),
        )
      case 'exhausted':
        throw new NumbersExhaustedError(
          script === 'createChat'
            ? `this application has used every chat number up to ${MAX_NUMBER}`
            : `chat ${args[0]} has used every message number up to ${MAX_NUMBER}; start a new chat`,
        )
      case 'conflict':
        throw new IdempotencyKeyReusedError('this Idempotency-Key was used with a different body', {
          details: [{ field: 'Idempotency-Key', message: 'already used with a different body' }],
        })
      case 'seed_app':
        await seedApplication(deps, token)
        break
      case 'seed_chats':
        await seedChats(deps, token, applicationId)
        break
      case 'seed_messages':
        await seedMessages(deps, token, applicationId, args[0]!)
        break
      default:
        throw new Error(`unexpected numbering reply ${status}`)
    }
  }
  throw new Error('numbering did not settle after seeding')
}

/** Takes the next chat number of an application. */
export const acceptChat = (deps: SequenceDeps, token: string, idempotency?: Idempotency) =>
  runScript(deps, 'createChat', token, 'c', idempotency, [])

/** Takes the next message number of a chat (which may itself still be in flight). */
export const acceptMessage = (deps: SequenceDeps, token: string, chat: number, idempotency?: Idempotency) =>
  runScript(deps, 'createMessage', token, `m:${chat}`, idempotency, [chat])

/** Checks that a chat exists and hands out the version of a title update. */
export const acceptChatUpdate = (deps: SequenceDeps, token: string, chat: number) =>
  runScript(deps, 'updateChat', token, '-', undefined, [chat])

/** Checks that a message exists and hands out the version of a body update. */
export const acceptMessageUpdate = (deps: SequenceDeps, token: string, chat: number, message: number) =>
  runScript(deps, 'updateMessage', token, '-', undefined, [chat, message])

/**
 * Raises counters that exist to at least the numbers just persisted. After Redis lost its data and
 * re-seeded, this pulls a counter above jobs that were still in flight during the seed.
 */
export const raiseCounters = async (
  redis: Redis,
  persisted: Array<{ token: string; field: string; number: number }>,
) => {
  const highest = new Map<string, { token: string; field: string; number: number }>()
  for (const item of persisted) {
    const key = `${item.token}|${item.field}`
    if ((highest.get(key)?.number ?? 0) < item.number) highest.set(key, item)
  }
  const r = scripted(redis)
  await Promise.all(
    [...highest.values()].map((item) =>
      r.raiseCounter(countersKey(item.token), item.field, String(item.number)),
    ),
  )
}
