import { existsSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { allRoutes, docsRoutes, type Method } from '../../lib/api/routes.ts'

/** An HTTP API route as API Gateway spells it: `{token}` where Hono has `:token` or `:chat{[0-9]+}`. */
export interface ApiRoute {
  method: Method
  path: string
}

/** How a function is invoked in the cloud. */
export type FunctionKind =
  | { kind: 'http'; operationIds: string[]; extraRoutes?: ApiRoute[] }
  /** A response-streaming Lambda behind its own function URL (API Gateway buffers responses). */
  | { kind: 'stream'; operationIds: string[] }
  | { kind: 'sqs'; queue: QueueKey }
  | { kind: 'schedule'; rateMinutes: number }

export type QueueKey = 'chats' | 'messages'

const http = (...operationIds: string[]): FunctionKind => ({ kind: 'http', operationIds })

/**
 * Every deployable function by folder name (functions/<name>/lambda.ts) and how it is invoked. HTTP
 * functions name the operations of lib/api/routes.ts they serve; the docs routes describe themselves.
 */
export const FUNCTION_KINDS: Readonly<Record<string, FunctionKind>> = {
  'create-application': http('createApplication'),
  'get-application': http('getApplication'),
  'update-application': http('updateApplication', 'replaceApplication'),
  health: http('health', 'ready'),
  docs: {
    kind: 'http',
    operationIds: [],
    extraRoutes: Object.values(docsRoutes),
  },
  'create-chat': http('createChat'),
  'list-chats': http('listChats'),
  'get-chat': http('getChat'),
  'update-chat': http('updateChat', 'replaceChat'),
  'create-message': http('createMessage'),
  'list-messages': http('listMessages'),
  'get-message': http('getMessage'),
  'update-message': http('updateMessage', 'replaceMessage'),
  'search-messages': http('searchMessages'),
  'stream-messages': { kind: 'stream', operationIds: ['streamMessages'] },
  'persist-chats': { kind: 'sqs', queue: 'chats' },
  'persist-messages': { kind: 'sqs', queue: 'messages' },
  'reconcile-counts': { kind: 'schedule', rateMinutes: 1 },
  'retry-indexing': { kind: 'schedule', rateMinutes: 1 },
}

export const FUNCTIONS_DIR = fileURLToPath(new URL('../../functions/', import.meta.url))

/** Path of a function's Lambda entry file. */
export const lambdaEntry = (name: string, functionsDir = FUNCTIONS_DIR) => `${functionsDir}${name}/lambda.ts`

/** The function folders that have a lambda.ts, sorted: what exists today is what gets deployed. */
export const discoverFunctions = (functionsDir = FUNCTIONS_DIR): string[] =>
  readdirSync(functionsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(lambdaEntry(entry.name, functionsDir)))
    .map((entry) => entry.name)
    .sort()

/**
 * Converts a Hono path to API Gateway's syntax.
 *
 * @example toApiGatewayPath('/applications/:token/chats/:chat{[0-9]+}') // '/applications/{token}/chats/{chat}'
 */
export const toApiGatewayPath = (honoPath: string) =>
  honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)(\{[^}]*\})?/g, '{$1}')

/** The routes an HTTP or streaming function serves, in API Gateway's syntax; [] for the other kinds. */
export const routesOf = (name: string): ApiRoute[] => {
  const kind = FUNCTION_KINDS[name]
  if (kind?.kind !== 'http' && kind?.kind !== 'stream') return []
  const routes = kind.operationIds.map((operationId) => {
    const route = allRoutes.find((candidate) => candidate.operationId === operationId)
    if (!route)
      throw new Error(`function ${name}: no route with operationId ${operationId} in lib/api/routes.ts`)
    return { method: route.method, path: toApiGatewayPath(route.path) }
  })
  return [...routes, ...(kind.kind === 'http' ? (kind.extraRoutes ?? []) : [])]
}

/** The functions to deploy with their kinds. Throws when a lambda.ts exists that the table lacks. */
export const deployableFunctions = (
  names = discoverFunctions(),
): Array<{ name: string; kind: FunctionKind }> =>
  names.map((name) => {
    const kind = FUNCTION_KINDS[name]
    if (!kind)
      throw new Error(`functions/${name}/lambda.ts is not in FUNCTION_KINDS (infra/lib/functions.ts)`)
    return { name, kind }
  })
