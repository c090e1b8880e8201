import type { Context, Handler, Hono, MiddlewareHandler } from 'hono'
import type { ParamKeys } from 'hono/types'
import * as v from 'valibot'
import type { RouteSpec } from '../api/routes.ts'
import { type PathParam, pathParams } from '../api/schemas.ts'
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

/** The path parameters' names, in path order. */
export const paramNamesOf = (path: string) =>
  [...path.matchAll(/:([a-z]+)/gi)].map(([, name]) => name as PathParam)

/**
 * Checks the path's parameters (a chat or message number is written in decimal digits): one that
 * cannot name a resource means there is no such resource, a 404.
 */
const pathParamsOf = (path: string) => {
  const names = paramNamesOf(path)
  return (c: Context) => {
    const params: Record<string, unknown> = {}
    for (const name of names) {
      const raw = c.req.param(name) ?? ''
      const value = name === 'token' ? raw : /^[0-9]{1,10}$/.test(raw) ? Number(raw) : Number.NaN
      if (!v.is(pathParams[name], value)) {
        throw new NotFoundError(
          name === 'token' ? 'application not found' : `${name} ${raw.slice(0, 12)} not found`,
        )
      }
      params[name] = value
    }
    c.req.addValidatedData('param', params)
  }
}

type RouteDeclaration = RouteSpec | readonly RouteSpec[]
type SpecOf<R> = R extends readonly (infer S)[] ? S : R
type OutputOf<R, K extends 'body' | 'query'> =
  SpecOf<R> extends { [P in K]: infer S extends v.GenericSchema } ? v.InferOutput<S> : never

/** What `c.req.valid('json' | 'query' | 'header' | 'param')` holds in a declared route's handler. */
export type RouteInput<R> = {
  out: {
    json: OutputOf<R, 'body'>
    query: OutputOf<R, 'query'>
    header: SpecOf<R> extends { hasIdempotencyKey: true } ? { idempotencyKey: string | undefined } : never
    param: {
      [K in ParamKeys<SpecOf<R> extends { path: infer P } ? P : never> & PathParam]: v.InferOutput<
        (typeof pathParams)[K]
      >
    }
  }
}

/**
 * Serves a route of lib/api/routes.ts: its method(s) and path, the body and query validators it
 * declares, then (in the handler's wrapper: synchronous, no more middleware steps) its path
 * parameters and Idempotency-Key, in the order the handlers used to check them. The handler reads
 * what was checked with `c.req.valid()`. A PATCH-and-PUT pair is one route.
 */
export const defineRoute = <R extends RouteDeclaration>(
  app: Hono<ApiEnv>,
  declaration: R,
  handler: Handler<ApiEnv, string, RouteInput<R>>,
) => {
  const specs = [declaration].flat() as RouteSpec[]
  const [route] = specs as [RouteSpec]
  const checkParams = pathParamsOf(route.path)
  return app.on(
    specs.map((spec) => spec.method),
    [route.path],
    ...(route.body ? [jsonBody(route.body, { isOptional: route.isBodyOptional })] : []),
    ...(route.query ? [queryParams(route.query)] : []),
    (c, next) => {
      checkParams(c)
      if (route.hasIdempotencyKey)
        c.req.addValidatedData('header', { idempotencyKey: idempotencyKeyHeader(c) })
      return (handler as Handler<ApiEnv>)(c, next)
    },
  )
}

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/

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
