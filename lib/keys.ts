// Every Redis key of one application carries its token in braces, so that a Redis Cluster keeps
// them in one slot and a Lua script may touch them all. The client adds REDIS_KEY_PREFIX in front.

/** The application's internal id, or '0' for a token known not to exist (short-lived). */
export const applicationKey = (token: string) => `a:{${token}}`

/** Hash of counters: `n` last chat number, `m:<chat>` last message number, `v` last version. */
export const countersKey = (token: string) => `n:{${token}}`

/** One Idempotency-Key's record, scoped to the application (chats) or the chat (messages). */
export const idempotencyKey = (token: string, scope: string, key: string) => `i:{${token}}:${scope}:${key}`

/** Writes of the application in the current one-second window (WRITE_RATE_LIMIT_PER_S). */
export const rateKey = (token: string) => `r:{${token}}`

/** Sets of application and chat ids whose rows changed since the reconciler last drained them. */
export const DIRTY_APPLICATIONS_KEY = 'counts:{dirty}:applications'
export const DIRTY_CHATS_KEY = 'counts:{dirty}:chats'
