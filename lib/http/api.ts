import { randomUUID } from 'node:crypto'
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { allRoutes } from '../api/routes.ts'
import {
  AppError,
  type ErrorDetail,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
} from '../errors.ts'
import type { Logger } from '../logger.ts'
import { recordRequest } from '../metrics.ts'

export interface ApiEnv {
  Variables: { requestId: string; logger: Logger }
}

export const MAX_BODY_BYTES = 64 * 1024
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

const HTTP_EXCEPTION_CODES: Record<number, string> = {
  400: 'invalid_json',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'validation_failed',
  429: 'rate_limited',
  503: 'unavailable',
}

const errorBody = (code: string, message: string, details: ErrorDetail[] = []) => ({
  error: { code, message, details },
})

/** Renders any thrown value as the contract's error JSON. Unknown errors are logged and become 500. */
export const toErrorResponse = (error: unknown, c: Context<ApiEnv>, logger: Logger): Response => {
  if (error instanceof AppError) {
    if (error.status === 503) c.get('logger')?.warn('backing service unavailable', { err: error })
    return c.json(errorBody(error.code, error.message, error.details), error.status, error.headers)
  }
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode
    const code = HTTP_EXCEPTION_CODES[status] ?? 'internal'
    return c.json(errorBody(code, error.message || code.replaceAll('_', ' ')), status)
  }
  ;(c.get('logger') ?? logger).error('unhandled error', { err: error })
  return c.json(errorBody('internal', 'an unexpected error occurred; it has been logged'), 500)
}

// The docs routes describe the API rather than belong to it, but answer 405 like every other path.
const DOCS_ROUTES = [
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
] as const

const compiledRoutes = [...allRoutes, ...DOCS_ROUTES].map((route) => ({
  method: route.method,
  pattern: new RegExp(
    `^${route.path.replace(/:[a-z]+(\{([^}]+)\})?/gi, (_all, _group, constraint) => `(${constraint ?? '[^/]+'})`)}$`,
  ),
}))

/** The methods some route allows on this path; empty when no route has this path at all. */
export const allowedMethods = (path: string): string[] => {
  const methods: string[] = compiledRoutes
    .filter((route) => route.pattern.test(path))
    .map((route) => route.method)
  if (methods.includes('GET')) methods.push('HEAD')
  return [...new Set(methods)]
}

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new PayloadTooLargeError(`the request body is over the limit of ${MAX_BODY_BYTES} bytes`)
  },
})

/**
 * Request id, a per-request child logger, the body limit and one access log line. Installed by every app, so it
 * must run once even when all apps are mounted on one root: later copies see the id and step aside.
 */
const requestContext =
  (logger: Logger): MiddlewareHandler<ApiEnv> =>
  async (c, next) => {
    if (c.get('requestId')) return next()
    const incoming = c.req.header('x-request-id')
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    const requestLogger = logger.child({ request_id: requestId })
    c.set('requestId', requestId)
    c.set('logger', requestLogger)
    const started = performance.now()
    await (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next))
    c.header('X-Request-Id', requestId)
    recordRequest(c.req.method, c.req.routePath, c.res.status, performance.now() - started)
    // The route pattern, not the URL: tokens are credentials and stay out of logs.
    requestLogger.info('request', {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    })
  }

/**
 * A Hono app with the shared error rendering, 404/405 answers, request ids, access logs and the
 * body limit. Every function's app starts here, and so does the server's root.
 */
export const createApi = (logger: Logger) => {
  const app = new Hono<ApiEnv>()
  app.use('*', requestContext(logger))
  app.onError((error, c) => toErrorResponse(error, c, logger))
  app.notFound((c) => {
    const allowed = allowedMethods(c.req.path)
    const error =
      allowed.length > 0
        ? new MethodNotAllowedError(c.req.method, allowed)
        : new NotFoundError(
            `no route for ${c.req.method} ${c.req.path.replace(/^\/applications\/[^/]+/, '/applications/…')}`,
          )
    return toErrorResponse(error, c, logger)
  })
  return app
}
