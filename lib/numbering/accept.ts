import { createHash } from 'node:crypto'
import { MAX_NUMBER } from '../api/schemas.ts'
import type { Config } from '../config.ts'
import {
  IdempotencyKeyReusedError,
  NotFoundError,
  NumbersExhaustedError,
  RateLimitedError,
} from '../errors.ts'
import { applicationKey, countersKey, idempotencyKey, rateKey } from '../keys.ts'
import { withRedis } from '../redis.ts'
import { type Reply, SCRIPTS, type ScriptName } from './scripts.ts'
import { type SeedDeps, seedApplication, seedChats, seedMessages } from './seed.ts'

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

const fingerprintOf = (idempotency?: Idempotency) =>
  idempotency ? createHash('sha256').update(JSON.stringify(idempotency.body)).digest('base64url') : ''

/** Runs a numbering script, seeding what Redis lacks from MySQL, until it answers. */
const runScript = async (
  deps: SequenceDeps,
  script: ScriptName,
  token: string,
  scope: string,
  idempotency: Idempotency | undefined,
  args: number[],
): Promise<Accepted> => {
  const fingerprint = fingerprintOf(idempotency)
  const keys = [
    applicationKey(token),
    countersKey(token),
    idempotencyKey(token, scope, idempotency?.key ?? ''),
    rateKey(token),
  ]
  for (let attempt = 0; attempt < 4; attempt++) {
    const [status, app, number, version] = await withRedis(() =>
      SCRIPTS[script]<Reply>(deps.redis, keys, [
        fingerprint,
        IDEMPOTENCY_TTL_S,
        deps.config.WRITE_RATE_LIMIT_PER_S,
        ...args,
      ]),
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
