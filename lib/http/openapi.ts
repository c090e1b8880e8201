import { toJsonSchema } from '@valibot/to-json-schema'
import type * as v from 'valibot'
import { allRoutes, type RouteSpec } from '../api/routes.ts'
import { errorOutput, pathParams } from '../api/schemas.ts'
import { codesOf, ERROR_CODES } from '../errors.ts'
import { IDEMPOTENCY_KEY, paramNamesOf } from './validate.ts'

type JsonObject = Record<string, unknown>

const schemaOf = (schema: v.GenericSchema, typeMode: 'input' | 'output'): JsonObject => {
  const { $schema: _drop, ...json } = toJsonSchema(schema, { errorMode: 'ignore', typeMode }) as JsonObject
  return json
}

/** The codes a status carries and what each means, from the one table of error codes. */
const describeStatus = (status: number) =>
  codesOf(status)
    .map((code) => `\`${code}\`: ${ERROR_CODES[code].means}`)
    .join('; or ')

const toOpenApiPath = (path: string) => path.replace(/:([a-z]+)(\{[^}]+\})?/gi, '{$1}')

const operationOf = (route: RouteSpec): JsonObject => {
  const pathParameters = paramNamesOf(route.path).map((name) => {
    const { description, ...schema } = schemaOf(pathParams[name], 'output')
    return { name, in: 'path', required: true, description, schema }
  })
  const queryParams = route.query
    ? Object.entries((schemaOf(route.query, 'input').properties ?? {}) as Record<string, JsonObject>).map(
        ([name, schema]) => ({
          name,
          in: 'query',
          required: ((schemaOf(route.query!, 'input').required as string[]) ?? []).includes(name),
          schema,
        }),
      )
    : []
  const headerParams: JsonObject[] = route.hasIdempotencyKey
    ? [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Retries with the same key and body within 24 hours get the same number and create nothing; the same key with another body is a 422.',
          schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source },
        },
      ]
    : []
  if (route.success.isEventStream) {
    headerParams.push({
      name: 'Last-Event-ID',
      in: 'header',
      required: false,
      description: 'Resume after this cursor: the `id` of the last event received (EventSource sends it)',
      schema: { type: 'string', pattern: '^[0-9]+-[0-9]+$' },
    })
  }
  const errors = Object.fromEntries(
    route.errors.map((status) => [
      String(status),
      {
        description: describeStatus(status),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    ]),
  )
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    parameters: [...pathParameters, ...queryParams, ...headerParams],
    ...(route.body && {
      requestBody: {
        required: !route.isBodyOptional,
        content: { 'application/json': { schema: schemaOf(route.body, 'input') } },
      },
    }),
    responses: {
      [String(route.success.status)]: {
        description: route.success.description,
        ...(route.success.hasLocation && {
          headers: { Location: { description: 'The resource', schema: { type: 'string' } } },
        }),
        ...(route.success.schema && {
          content: {
            [route.success.isEventStream ? 'text/event-stream' : 'application/json']: {
              schema: schemaOf(route.success.schema, 'output'),
            },
          },
        }),
      },
      ...errors,
    },
  }
}

/** The OpenAPI 3.1 description, generated from the same route table and schemas the apps validate with. */
export const buildOpenApiDocument = (): JsonObject => {
  const paths: Record<string, JsonObject> = {}
  for (const route of allRoutes) {
    const path = toOpenApiPath(route.path)
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operationOf(route) }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Chat system API',
      version: '1.0.0',
      description:
        'Applications (by token), chats numbered per application, messages numbered per chat, and substring search. Chat and message writes are accepted with 202 and persisted shortly after.',
    },
    tags: [{ name: 'applications' }, { name: 'chats' }, { name: 'messages' }, { name: 'operations' }],
    paths,
    components: { schemas: { Error: schemaOf(errorOutput, 'output') } },
  }
}
