import type { Context, Handler, Hono, MiddlewareHandler } from 'hono'
import * as v from 'valibot'
import type { RouteSpec } from '../api/routes.ts'
import { MAX_NUMBER } from '../api/schemas.ts'
import {
  type ErrorDetail,
  InvalidJsonError,
  InvalidParameterError,
  NotFoundError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.ts'
import { type ApiEnv, requestHeader } from './api.ts'

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
export const jsonBody =
  <S extends v.GenericSchema>(
    schema: S,
    { isOptional = false } = {},
  ): MiddlewareHandler<ApiEnv, string, { out: { json: v.InferOutput<S> } }> =>
  async (c, next) => {
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
    c.req.addValidatedData('json', result.output as object)
    await next()
  }

const OPTIONAL = new Set(['optional', 'exact_optional', 'nullish'])

/** The fields of an object schema that are not optional. */
const requiredFieldsOf = (schema: v.GenericSchema): string[] => {
  const entries = (schema as { entries?: Record<string, v.GenericSchema> }).entries ?? {}
  return Object.keys(entries).filter((field) => !OPTIONAL.has(entries[field]!.type))
}

/**
 * Validates the query string: 400 `invalid_parameter` for a malformed parameter, except a required
 * one, whose absence or emptiness the contract calls a 422.
 */
export const queryParams = (schema: v.GenericSchema): MiddlewareHandler => {
  const requiredFields = requiredFieldsOf(schema)
  return async (c, next) => {
    const result = v.safeParse(schema, c.req.query())
    if (!result.success) {
      const details = toDetails(result.issues)
      const isValidation = details.some((detail) => requiredFields.includes(detail.field))
      const ErrorClass = isValidation ? ValidationError : InvalidParameterError
      throw new ErrorClass(summarize(details), { details })
    }
    c.req.addValidatedData('query', result.output as object)
    await next()
  }
}

type RouteDeclaration = RouteSpec | readonly RouteSpec[]
type SpecOf<R> = R extends readonly (infer S)[] ? S : R
type OutputOf<R, K extends 'body' | 'query'> =
  SpecOf<R> extends { [P in K]: infer S extends v.GenericSchema } ? v.InferOutput<S> : never

/** What `c.req.valid('json')` and `c.req.valid('query')` hold in a declared route's handler. */
export type RouteInput<R> = { out: { json: OutputOf<R, 'body'>; query: OutputOf<R, 'query'> } }

/** The validators a route declares, in the order they run: its JSON body, then its query string. */
export const validatorsOf = (route: RouteSpec): MiddlewareHandler<ApiEnv>[] => [
  ...(route.body ? [jsonBody(route.body, { isOptional: route.isBodyOptional })] : []),
  ...(route.query ? [queryParams(route.query)] : []),
]

/**
 * Serves a route of lib/api/routes.ts: its method(s) and path, then the validators it declares, then
 * the handler, which reads what they checked with `c.req.valid()`. A PATCH-and-PUT pair is one route.
 */
export const defineRoute = <R extends RouteDeclaration>(
  app: Hono<ApiEnv>,
  declaration: R,
  handler: Handler<ApiEnv, string, RouteInput<R>>,
) => {
  const specs = [declaration].flat() as RouteSpec[]
  const [route] = specs as [RouteSpec]
  return app.on(
    specs.map((spec) => spec.method),
    [route.path],
    ...validatorsOf(route),
    handler as Handler<ApiEnv>,
  )
}

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
