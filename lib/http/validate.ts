import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import * as v from 'valibot'
import { MAX_NUMBER } from '../api/schemas.ts'
import {
  type ErrorDetail,
  InvalidJsonError,
  InvalidParameterError,
  NotFoundError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.ts'
import { requestHeader } from './api.ts'

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

const toDetails = (issues: v.BaseIssue<unknown>[]): ErrorDetail[] =>
  issues.map((issue) => {
    const field = issue.path?.map((item) => String(item.key)).join('.') ?? ''
    const isMissing = issue.kind === 'schema' && issue.input === undefined && field !== ''
    return { field, message: isMissing ? `${field} is required` : issue.message }
  })

const summarize = (details: ErrorDetail[]) => details.map((d) => d.message).join('; ')

/**
 * Parses and validates a JSON object body: 415 for another media type, 400 for malformed JSON or a
 * non-object, 422 naming each bad field. With `isOptional`, an empty body counts as `{}`.
 */
export const jsonBody = <S extends v.GenericSchema>(schema: S, { isOptional = false } = {}) =>
  createMiddleware<{ Variables: { body: v.InferOutput<S> } }>(async (c, next) => {
    const text = await c.req.text()
    const isEmpty = text.trim() === ''
    if (!(isEmpty && isOptional) && !JSON_TYPE.test(requestHeader(c, 'content-type') ?? '')) {
      throw new UnsupportedMediaTypeError('the request body must be application/json')
    }
    let data: unknown = {}
    if (!isEmpty) {
      try {
        data = JSON.parse(text)
      } catch {
        throw new InvalidJsonError('the request body is not valid JSON')
      }
    } else if (!isOptional) {
      throw new InvalidJsonError('the request body is empty; a JSON object is required')
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw new InvalidJsonError('the request body must be a JSON object')
    }
    const result = v.safeParse(schema, data)
    if (!result.success) {
      const details = toDetails(result.issues)
      throw new ValidationError(summarize(details), { details })
    }
    c.set('body', result.output)
    await next()
  })

/**
 * Validates the query string: 400 `invalid_parameter` for a malformed parameter, except the
 * `requiredFields` whose absence or emptiness the contract calls a 422.
 */
export const queryParams = <S extends v.GenericSchema>(schema: S, { requiredFields = [] as string[] } = {}) =>
  createMiddleware<{ Variables: { query: v.InferOutput<S> } }>(async (c, next) => {
    const result = v.safeParse(schema, c.req.query())
    if (!result.success) {
      const details = toDetails(result.issues)
      const isValidation = details.some((detail) => requiredFields.includes(detail.field))
      const ErrorClass = isValidation ? ValidationError : InvalidParameterError
      throw new ErrorClass(summarize(details), { details })
    }
    c.set('query', result.output)
    await next()
  })

const TOKEN = /^[A-Za-z0-9_-]{32}$/

/** The path's application token; one that cannot be a token is simply not found. */
export const tokenParam = (c: Context): string => {
  const token = c.req.param('token') ?? ''
  if (!TOKEN.test(token)) throw new NotFoundError('application not found')
  return token
}

/** A chat or message number from the path; out of range means no such resource. */
export const numberParam = (c: Context, name: 'chat' | 'message'): number => {
  const raw = c.req.param(name) ?? ''
  const value = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(value >= 1 && value <= MAX_NUMBER)) throw new NotFoundError(`${name} ${raw.slice(0, 12)} not found`)
  return value
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/

/** The optional `Idempotency-Key` header: 1–255 visible ASCII characters, else 400. */
export const idempotencyKeyHeader = (c: Context): string | undefined => {
  const key = requestHeader(c, 'idempotency-key')
  if (key === undefined) return undefined
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new InvalidParameterError('Idempotency-Key must be 1 to 255 visible ASCII characters', {
      details: [{ field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' }],
    })
  }
  return key
}
