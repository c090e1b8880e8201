/** One field-level problem, as listed in an error's `details`. */
export interface ErrorDetail {
  field: string
  message: string
}

/** Base of every error the API renders on purpose: a fixed status and a stable snake_case code. */
export abstract class AppError extends Error {
  abstract readonly status: 400 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 503
  abstract readonly code: string
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
}

export class InvalidJsonError extends AppError {
  readonly status = 400
  readonly code = 'invalid_json'
}

export class InvalidParameterError extends AppError {
  readonly status = 400
  readonly code = 'invalid_parameter'
}

export class NotFoundError extends AppError {
  readonly status = 404
  readonly code = 'not_found'
}

export class MethodNotAllowedError extends AppError {
  readonly status = 405
  readonly code = 'method_not_allowed'
  constructor(method: string, allowed: string[]) {
    super(`${method} is not allowed here; use ${allowed.join(', ')}`, {
      headers: { Allow: allowed.join(', ') },
    })
  }
}

export class PayloadTooLargeError extends AppError {
  readonly status = 413
  readonly code = 'payload_too_large'
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415
  readonly code = 'unsupported_media_type'
}

export class ValidationError extends AppError {
  readonly status = 422
  readonly code = 'validation_failed'
}

export class IdempotencyKeyReusedError extends AppError {
  readonly status = 422
  readonly code = 'idempotency_key_reused'
}

/**
 * A counter reached MAX_NUMBER (2^31-1), the highest number every layer stores: the API's paths,
 * MySQL's unsigned int and the search index's integer. Refused before the number is taken.
 */
export class NumbersExhaustedError extends AppError {
  readonly status = 409
  readonly code = 'numbers_exhausted'
}

export class RateLimitedError extends AppError {
  readonly status = 429
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
  readonly status = 503
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
