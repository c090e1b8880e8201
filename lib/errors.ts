/** One field-level problem, as listed in an error's `details`. */
export interface ErrorDetail {
  field: string
  message: string
}

/**
 * Every error code the API answers with, its status, and what it means (the OpenAPI description of
 * each status lists its codes from here). The first code of a status is the one Hono's own errors get.
 */
export const ERROR_CODES = {
  invalid_json: { status: 400, means: 'body not JSON or not an object' },
  invalid_parameter: { status: 400, means: 'malformed query parameter or Idempotency-Key' },
  not_found: { status: 404, means: 'unknown token, chat or message' },
  method_not_allowed: { status: 405, means: 'another method is allowed here (Allow)' },
  numbers_exhausted: {
    status: 409,
    means:
      'the chat (or application) already holds number 2147483647, the highest a chat or message can have',
  },
  payload_too_large: { status: 413, means: 'body over 64 KiB' },
  unsupported_media_type: { status: 415, means: 'body not application/json' },
  validation_failed: { status: 422, means: 'details name each field' },
  idempotency_key_reused: { status: 422, means: 'the same Idempotency-Key came with another body' },
  rate_limited: {
    status: 429,
    means:
      'over WRITE_RATE_LIMIT_PER_S writes a second, or LIVE_STREAMS_PER_APPLICATION open streams, for this application (Retry-After)',
  },
  unavailable: {
    status: 503,
    means:
      'a backing service is down (Retry-After). For a chat or message write the message says whether it may still have happened (SQS did not confirm in time); a create retried with the same Idempotency-Key gets the same number',
  },
} as const satisfies Record<string, { status: number; means: string }>

export type ErrorCode = keyof typeof ERROR_CODES
export type ErrorStatus = (typeof ERROR_CODES)[ErrorCode]['status']

const ALL_CODES = Object.keys(ERROR_CODES) as ErrorCode[]

/** The codes a status can carry, in the table's order. */
export const codesOf = (status: number): ErrorCode[] =>
  ALL_CODES.filter((code) => ERROR_CODES[code].status === status)

/** Base of every error the API renders on purpose: a stable snake_case code and the status it has. */
export abstract class AppError extends Error {
  abstract readonly code: ErrorCode
  readonly details: ErrorDetail[]
  readonly headers: Record<string, string>

  constructor(
    message: string,
    options: { details?: ErrorDetail[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause })
    this.name = new.target.name
    this.details = options.details ?? []
    this.headers = options.headers ?? {}
  }

  get status(): ErrorStatus {
    return ERROR_CODES[this.code].status
  }
}

export class InvalidJsonError extends AppError {
  readonly code = 'invalid_json'
}

export class InvalidParameterError extends AppError {
  readonly code = 'invalid_parameter'
}

export class NotFoundError extends AppError {
  readonly code = 'not_found'
}

export class MethodNotAllowedError extends AppError {
  readonly code = 'method_not_allowed'
  constructor(method: string, allowed: string[]) {
    super(`${method} is not allowed here; use ${allowed.join(', ')}`, {
      headers: { Allow: allowed.join(', ') },
    })
  }
}

export class PayloadTooLargeError extends AppError {
  readonly code = 'payload_too_large'
}

export class UnsupportedMediaTypeError extends AppError {
  readonly code = 'unsupported_media_type'
}

export class ValidationError extends AppError {
  readonly code = 'validation_failed'
}

export class IdempotencyKeyReusedError extends AppError {
  readonly code = 'idempotency_key_reused'
}

/**
 * A counter reached MAX_NUMBER (2^31-1), the highest number every layer stores: the API's paths,
 * MySQL's unsigned int and the search index's integer. Refused before the number is taken.
 */
export class NumbersExhaustedError extends AppError {
  readonly code = 'numbers_exhausted'
}

export class RateLimitedError extends AppError {
  readonly code = 'rate_limited'
  constructor(message: string, retryAfterSeconds: number) {
    super(message, { headers: { 'Retry-After': String(retryAfterSeconds) } })
  }
}

/**
 * A backing service needed for the request is down; nothing was half-written. `message` replaces
 * the default one where the client must know more (a create that may have happened).
 */
export class UnavailableError extends AppError {
  readonly code = 'unavailable'
  constructor(
    service: string,
    options: { cause?: unknown; retryAfterSeconds?: number; details?: ErrorDetail[]; message?: string } = {},
  ) {
    super(options.message ?? `${service} unavailable, try again shortly`, {
      cause: options.cause,
      details: options.details,
      headers: { 'Retry-After': String(options.retryAfterSeconds ?? 1) },
    })
  }
}
