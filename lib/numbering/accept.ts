import { createHash } from 'node:crypto'
import { MAX_NUMBER } from '../api/schemas.ts'
import type { Config } from '../config.ts'
import {
  IdempotencyKeyReusedError,
  NotFoundError,
  NumbersExhaustedError,
  RateLimitedError,
} from '../errors.ts'
import { idempotencyKey } from '../keys.ts'
import { withRedis } from '../redis.ts'
import { numberInBatch } from './batch.ts'
import type { NumberingKind } from './scripts.ts'
import { type SeedDeps, seedApplication, seedChats, seedMessages } from './seed.ts'

// Numbering lives in Redis. Per application token there are two keys in one Cluster slot:
//   a:{token}  the application id ('0' for a token known not to exist, for a minute)
//   n:{token}  a hash: n = last chat number, m:<chat> = last message number of that chat,
//              v = last version handed out in this application
// Each create or update goes through one script (scripts.ts): it checks that the parent exists,
// counts the write against the application's rate limit, honours the Idempotency-Key, and hands out
// the number and a version. The requests of one application that arrive in the same event-loop
// turn share ONE call of it (batch.ts), which takes them in arrival order, each as if it ran alone,
// and answers each on its own. A version is Redis time in microseconds, forced above the previous
// one, so versions order the writes of an application in the order the API accepted them, across
// any number of servers; consumers keep the highest.
//
// A missing key means Redis has never seen the application (it was created before Redis lost its
// data, or it does not exist): the script says what to seed, the caller reads MySQL once, seeds
// with HSETNX/SET NX (so concurrent seeders agree) and asks again, in a later batch. A missing
// application or chat counter stops the whole batch; a missing message counter only the requests
// for that chat.

const IDEMPOTENCY_TTL_S = 24 * 60 * 60

export interface SequenceDeps extends SeedDeps {
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

interface ScriptInput {
  /** Where the Idempotency-Key lives: 'c' for chats, 'm:<chat>' for a chat's messages. */
  scope?: string
  idempotency?: Idempotency
  chat?: number
  message?: number
}

const fingerprintOf = (idempotency?: Idempotency) =>
  idempotency ? createHash('sha256').update(JSON.stringify(idempotency.body)).digest('base64url') : ''

// Seeds in progress, per Redis client and what they fill in. The requests that find the same thing
// missing (a whole batch, after Redis lost its data) wait for one seed instead of each reading
// MySQL and counting the queues (four SQS calls) for it. A seed computed at any time after the loss
// is as good as any other: no number is handed out from a missing counter meanwhile.
const seeding = new WeakMap<SeedDeps['redis'], Map<string, Promise<void>>>()
const seedOnce = (deps: SeedDeps, what: string, seed: () => Promise<void>) => {
  let running = seeding.get(deps.redis)
  if (!running) {
    running = new Map()
    seeding.set(deps.redis, running)
  }
  let seeded = running.get(what)
  if (!seeded) {
    const inProgress = running
    seeded = seed().finally(() => inProgress.delete(what))
    running.set(what, seeded)
  }
  return seeded
}

/** Numbers a request in its application's batch, seeding what Redis lacks from MySQL, until it answers. */
const numberRequest = async (
  deps: SequenceDeps,
  token: string,
  kind: NumberingKind,
  { scope = '-', idempotency, chat = 0, message = 0 }: ScriptInput,
): Promise<Accepted> => {
  const request = {
    kind,
    idempotencyKey: idempotencyKey(token, scope, idempotency?.key ?? ''),
    fingerprint: fingerprintOf(idempotency),
    chat,
    message,
  }
  const settings = { idempotencyTtlS: IDEMPOTENCY_TTL_S, rateLimit: deps.config.WRITE_RATE_LIMIT_PER_S }
  for (let attempt = 0; attempt < 4; attempt++) {
    const reply = await withRedis(() => numberInBatch(deps.redis, token, settings, request))
    const applicationId = reply.app
    switch (reply.status) {
      case 'ok':
      case 'replay':
        return { applicationId, number: reply.number, version: reply.version }
      case 'no_app':
        throw new NotFoundError('application not found')
      case 'no_chat':
        throw new NotFoundError(`chat ${chat} not found`)
      case 'no_message':
        throw new NotFoundError(`message ${message} not found`)
      case 'rate_limited':
        throw new RateLimitedError(
          `over ${deps.config.WRITE_RATE_LIMIT_PER_S} writes a second for this application; retry shortly`,
          Math.max(1, Math.ceil(reply.number / 1000)),
        )
      case 'exhausted':
        throw new NumbersExhaustedError(
          kind === 'createChat'
            ? `this application has used every chat number up to ${MAX_NUMBER}`
            : `chat ${chat} has used every message number up to ${MAX_NUMBER}; start a new chat`,
        )
      case 'conflict':
        throw new IdempotencyKeyReusedError('this Idempotency-Key was used with a different body', {
          details: [{ field: 'Idempotency-Key', message: 'already used with a different body' }],
        })
      case 'seed_app':
        await seedOnce(deps, `a ${token}`, () => seedApplication(deps, token))
        break
      case 'seed_chats':
        await seedOnce(deps, `n ${token}`, () => seedChats(deps, token, applicationId))
        break
      case 'seed_messages':
        await seedOnce(deps, `m ${token} ${chat}`, () => seedMessages(deps, token, applicationId, chat))
        break
      default:
        throw new Error(`unexpected numbering reply ${reply.status}`)
    }
  }
  throw new Error('numbering did not settle after seeding')
}

/** Takes the next chat number of an application. */
export const acceptChat = (deps: SequenceDeps, token: string, idempotency?: Idempotency) =>
  numberRequest(deps, token, 'createChat', { scope: 'c', idempotency })

/** Takes the next message number of a chat (which may itself still be in flight). */
export const acceptMessage = (deps: SequenceDeps, token: string, chat: number, idempotency?: Idempotency) =>
  numberRequest(deps, token, 'createMessage', { scope: `m:${chat}`, idempotency, chat })

/** Checks that a chat exists and hands out the version of a title update. */
export const acceptChatUpdate = (deps: SequenceDeps, token: string, chat: number) =>
  numberRequest(deps, token, 'updateChat', { chat })

/** Checks that a message exists and hands out the version of a body update. */
export const acceptMessageUpdate = (deps: SequenceDeps, token: string, chat: number, message: number) =>
  numberRequest(deps, token, 'updateMessage', { chat, message })
