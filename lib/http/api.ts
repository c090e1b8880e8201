import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import type { RouterRoute } from 'hono/types'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { allRoutes, docsRoutes } from '../api/routes.ts'
import {
  AppError,
  codesOf,
  type ErrorDetail,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
} from '../errors.ts'
import type { Logger } from '../logger.ts'
import { recordRequest } from '../metrics.ts'
import { apiRouter, RouteListRouter } from './router.ts'

export interface ApiEnv {
  Variables: { requestId: string; logger: Logger }
}

export const MAX_BODY_BYTES = 64 * 1024
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

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
    const code = codesOf(status)[0] ?? 'internal'
    return c.json(errorBody(code, error.message || code.replaceAll('_', ' ')), status)
  }
  ;(c.get('logger') ?? logger).error('unhandled error', { err: error })
  return c.json(errorBody('internal', 'an unexpected error occurred; it has been logged'), 500)
}

// The docs routes describe the API rather than belong to it, but answer 405 like every other path.
// Compiled as the server's root router compiles them: literal segments match only themselves.
const compiledRoutes = [...allRoutes, ...Object.values(docsRoutes)].map((route) => ({
  method: route.method,
  pattern: RouteListRouter.compile(route.path),
}))

/** The methods some route allows on this path; empty when no route has this path at all. */
export const allowedMethods = (path: string): string[] => {
  const methods: string[] = compiledRoutes
    .filter((route) => route.pattern.test(path))
    .map((route) => route.method)
  if (methods.includes('GET')) methods.push('HEAD')
  return [...new Set(methods)]
}

type NodeBindings = { incoming?: IncomingMessage; outgoing?: ServerResponse }

/**
 * A request header. On @hono/node-server it is read from Node's own header object: the first
 * `c.req.header()` call builds a WHATWG Headers of every header, which costs more than the rest of
 * the middleware. Elsewhere (Lambda, `app.request()`), it is `c.req.header()`.
 */
export const requestHeader = (c: Context, name: string): string | undefined => {
  const incoming = (c.env as NodeBindings | undefined)?.incoming
  if (!incoming?.headers) return c.req.header(name)
  const value = incoming.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * Sets a response header. On @hono/node-server straight on the ServerResponse: a header passed to
 * `c.json()` besides Content-Type makes Hono build a WHATWG Headers, and the server convert it back
 * (undici's header validation showed in the creates' profile). Elsewhere (Lambda, `app.request()`),
 * `c.header()`. Set it only once the answer is certain: on Node it outlives an error thrown after it.
 */
export const responseHeader = (c: Context, name: string, value: string) => {
  const outgoing = (c.env as NodeBindings | undefined)?.outgoing
  if (outgoing?.setHeader) outgoing.setHeader(name, value)
  else c.header(name, value)
}

const PAYLOAD_TOO_LARGE = `the request body is over the limit of ${MAX_BODY_BYTES} bytes`

const streamingLimit = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new PayloadTooLargeError(PAYLOAD_TOO_LARGE)
  },
})

/**
 * The body limit. A declared Content-Length is checked without touching the body, which leaves the
 * server's fast body read (no WHATWG Request, no web stream) to the handler; only a body of unknown
 * length (chunked) is streamed through Hono's counting limit.
 */
const limitBody: MiddlewareHandler = (c, next) => {
  const length = requestHeader(c, 'content-length')
  if (length === undefined || requestHeader(c, 'transfer-encoding') !== undefined)
    return streamingLimit(c, next)
  if (Number(length) > MAX_BODY_BYTES) throw new PayloadTooLargeError(PAYLOAD_TOO_LARGE)
  return next()
}

/** Where every request's end is observed: the access log line (route pattern, never the URL). */
const requestEnded = (c: Context<ApiEnv>, ms: number) => {
  const { method } = c.req
  // The route pattern, not the URL: tokens are credentials and stay out of logs and metrics.
  const route = c.req.routePath
  const { status } = c.res
  recordRequest(method, route, status, ms)
  c.get('logger').info('request', { method, route, status, ms: Math.round(ms * 10) / 10 })
}

/**
 * Request id, a per-request child logger, the body limit and one access log line. Every function's
 * app installs it; on the server's root it runs once (see mountApis), and a copy that still meets a
 * request that already has an id steps aside.
 */
const requestContext =
  (logger: Logger): MiddlewareHandler<ApiEnv> =>
  async (c, next) => {
    if (c.get('requestId')) return next()
    const started = performance.now()
    const incoming = requestHeader(c, 'x-request-id')
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    c.set('requestId', requestId)
    c.set('logger', logger.child({ request_id: requestId }))
    // Set before the response exists, so that every response carries it, hand-built ones (streams)
    // included. On Node, straight on the ServerResponse (writeHead merges it): a Hono header would
    // build a WHATWG Headers for every response; set after the handler, it would even make Hono
    // rebuild the response around a web stream of its body.
    const outgoing = (c.env as NodeBindings | undefined)?.outgoing
    if (outgoing?.setHeader) outgoing.setHeader('X-Request-Id', requestId)
    else c.header('X-Request-Id', requestId)
    if (c.req.method === 'GET' || c.req.method === 'HEAD') await next()
    else {
      // A body over the limit is rejected here, before the handler: render it here too, so that
      // it gets its request id and access log line like any other answer.
      try {
        await limitBody(c, next)
      } catch (error) {
        if (!(error instanceof PayloadTooLargeError)) throw error
        c.res = toErrorResponse(error, c, logger)
      }
    }
    // Off Node, a Response built by hand (a stream, say) did not go through the context: add it.
    if (!outgoing?.setHeader && !c.res.headers.has('x-request-id')) c.header('X-Request-Id', requestId)
    requestEnded(c, performance.now() - started)
  }

/** Marks the shared middleware, so that mountApis can leave the function apps' copies out. */
const SHARED = Symbol('shared request middleware')

/**
 * A Hono app with the shared error rendering, 404/405 answers, request ids, access logs and the
 * body limit. Every function's app starts here, and so does the server's root.
 */
export const createApi = (logger: Logger) => {
  const app = new Hono<ApiEnv>({ router: apiRouter() })
  app.use('*', Object.assign(requestContext(logger), { [SHARED]: true }))
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

/**
 * Mounts function apps (each built on createApi) on a root built by createApi. Unlike
 * `root.route('/', app)`, which would chain every app's copy of the shared middleware and wrap every
 * handler in the app's own error handler, this adds only the apps' routes: the root's middleware,
 * error handler and 404/405 answers, which are the same, serve them all once.
 */
export const mountApis = <E extends ApiEnv>(root: Hono<E>, apps: Array<{ routes: RouterRoute[] }>) => {
  for (const app of apps) {
    for (const route of app.routes) {
      if (!(SHARED in route.handler)) root.on(route.method, route.path, route.handler as MiddlewareHandler<E>)
    }
  }
  return root
}
