import type * as v from 'valibot'
import * as s from './schemas.ts'

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT'

/** One endpoint: the app that serves it and the OpenAPI description are both built from this. */
export interface RouteSpec {
  method: Method
  /** Hono path; `{regex}` after a parameter restricts what matches it. */
  path: string
  operationId: string
  summary: string
  tag: 'applications' | 'chats' | 'messages' | 'operations'
  body?: v.GenericSchema
  isBodyOptional?: boolean
  query?: v.GenericSchema
  hasIdempotencyKey?: boolean
  success: {
    status: 200 | 201 | 202
    description: string
    schema?: v.GenericSchema
    hasLocation?: boolean
    /** A Server-Sent Events stream instead of a JSON body; `schema` is then each event's data. */
    isEventStream?: boolean
  }
  errors: Array<400 | 404 | 409 | 413 | 415 | 422 | 429 | 503>
}

const TOKEN = ':token'
const CHAT = ':chat{[0-9]+}'
const MESSAGE = ':message{[0-9]+}'

export const paths = {
  applications: '/applications',
  application: `/applications/${TOKEN}`,
  chats: `/applications/${TOKEN}/chats`,
  chat: `/applications/${TOKEN}/chats/${CHAT}`,
  messages: `/applications/${TOKEN}/chats/${CHAT}/messages`,
  message: `/applications/${TOKEN}/chats/${CHAT}/messages/${MESSAGE}`,
  search: `/applications/${TOKEN}/chats/${CHAT}/messages/search`,
  stream: `/applications/${TOKEN}/chats/${CHAT}/messages/stream`,
} as const

const BODY_ERRORS = [400, 413, 415, 422] as const
/** Chat and message writes count against the application's write rate. */
const WRITE_ERRORS = [...BODY_ERRORS, 404, 429, 503] as const

/** The same update under PATCH and PUT: both replace the one field they carry. */
const patchAndPut = <T extends Omit<RouteSpec, 'method'>>(spec: T) =>
  [
    { ...spec, method: 'PATCH' as const },
    { ...spec, method: 'PUT' as const, operationId: spec.operationId.replace(/^update/, 'replace') },
  ] as const

export const routes = {
  createApplication: {
    method: 'POST',
    path: paths.applications,
    operationId: 'createApplication',
    summary: 'Create an application; the system generates its token',
    tag: 'applications',
    body: s.applicationInput,
    success: { status: 201, description: 'Created', schema: s.applicationOutput, hasLocation: true },
    errors: [...BODY_ERRORS, 503],
  },
  getApplication: {
    method: 'GET',
    path: paths.application,
    operationId: 'getApplication',
    summary: 'Read an application',
    tag: 'applications',
    success: { status: 200, description: 'The application', schema: s.applicationOutput },
    errors: [404, 503],
  },
  updateApplication: patchAndPut({
    path: paths.application,
    operationId: 'updateApplication',
    summary: 'Rename an application (PATCH and PUT alike: `name` is the only writable field)',
    tag: 'applications',
    body: s.applicationInput,
    success: { status: 200, description: 'The updated application', schema: s.applicationOutput },
    errors: [...BODY_ERRORS, 404, 503],
  }),
  createChat: {
    method: 'POST',
    path: paths.chats,
    operationId: 'createChat',
    summary: 'Create a chat; answers its number at once, persists shortly after',
    tag: 'chats',
    body: s.newChatInput,
    isBodyOptional: true,
    hasIdempotencyKey: true,
    success: { status: 202, description: 'Accepted', schema: s.acceptedOutput, hasLocation: true },
    errors: [...WRITE_ERRORS, 409],
  },
  listChats: {
    method: 'GET',
    path: paths.chats,
    operationId: 'listChats',
    summary: 'List the chats of an application by number, keyset-paginated',
    tag: 'chats',
    query: s.pageQuery,
    success: { status: 200, description: 'A page of chats', schema: s.chatPageOutput },
    errors: [400, 404, 503],
  },
  getChat: {
    method: 'GET',
    path: paths.chat,
    operationId: 'getChat',
    summary: 'Read a chat',
    tag: 'chats',
    success: { status: 200, description: 'The chat', schema: s.chatOutput },
    errors: [404, 503],
  },
  updateChat: patchAndPut({
    path: paths.chat,
    operationId: 'updateChat',
    summary: 'Set the title of a chat (asynchronous, like creation)',
    tag: 'chats',
    body: s.chatUpdateInput,
    success: { status: 202, description: 'Accepted', schema: s.acceptedOutput, hasLocation: true },
    errors: [...WRITE_ERRORS],
  }),
  createMessage: {
    method: 'POST',
    path: paths.messages,
    operationId: 'createMessage',
    summary: 'Create a message; answers its number at once, persists shortly after',
    tag: 'messages',
    body: s.messageInput,
    hasIdempotencyKey: true,
    success: { status: 202, description: 'Accepted', schema: s.acceptedOutput, hasLocation: true },
    errors: [...WRITE_ERRORS, 409],
  },
  listMessages: {
    method: 'GET',
    path: paths.messages,
    operationId: 'listMessages',
    summary: 'List the messages of a chat by number, keyset-paginated',
    tag: 'messages',
    query: s.pageQuery,
    success: { status: 200, description: 'A page of messages', schema: s.messagePageOutput },
    errors: [400, 404, 503],
  },
  searchMessages: {
    method: 'GET',
    path: paths.search,
    operationId: 'searchMessages',
    summary: 'Find the messages of a chat whose body contains the text (case- and accent-insensitive)',
    tag: 'messages',
    query: s.searchQuery,
    success: { status: 200, description: 'Hits by relevance, then newest first', schema: s.searchPageOutput },
    errors: [400, 404, 422, 503],
  },
  streamMessages: {
    method: 'GET',
    path: paths.stream,
    operationId: 'streamMessages',
    summary:
      "Stream the chat's messages as they are created or updated (Server-Sent Events); resume with Last-Event-ID",
    tag: 'messages',
    query: s.streamQuery,
    success: {
      status: 200,
      description:
        '`text/event-stream` that stays open: `event: message` with an opaque growing cursor as `id` and the Message as `data`, once persisted; `event: reset` (data `{}`) when the cursor is older than what is kept (at least 10 minutes and the last 1,000 events), then re-list with `GET …/messages?after=`; `: ping` at least every 15 s. A client that reads too slowly is disconnected and resumes with its cursor.',
      schema: s.messageOutput,
      isEventStream: true,
    },
    errors: [404, 429, 503],
  },
  getMessage: {
    method: 'GET',
    path: paths.message,
    operationId: 'getMessage',
    summary: 'Read a message',
    tag: 'messages',
    success: { status: 200, description: 'The message', schema: s.messageOutput },
    errors: [404, 503],
  },
  updateMessage: patchAndPut({
    path: paths.message,
    operationId: 'updateMessage',
    summary: 'Replace the body of a message (asynchronous, like creation)',
    tag: 'messages',
    body: s.messageInput,
    success: { status: 202, description: 'Accepted', schema: s.acceptedOutput, hasLocation: true },
    errors: [...WRITE_ERRORS],
  }),
  health: {
    method: 'GET',
    path: '/health',
    operationId: 'health',
    summary: 'Liveness: 200 while the process is up',
    tag: 'operations',
    success: { status: 200, description: 'Up', schema: s.healthOutput },
    errors: [],
  },
  ready: {
    method: 'GET',
    path: '/ready',
    operationId: 'ready',
    summary: 'Readiness: 200 when every backing service answers, else 503 naming those that do not',
    tag: 'operations',
    success: { status: 200, description: 'Every backing service answers', schema: s.readyOutput },
    errors: [503],
  },
} satisfies Record<string, RouteSpec | readonly RouteSpec[]>

/** The API's own description: served beside the API, not described in it. */
export const docsRoutes = {
  openApi: { method: 'GET', path: '/openapi.json' },
  page: { method: 'GET', path: '/docs' },
} as const satisfies Record<string, Pick<RouteSpec, 'method' | 'path'>>

/** Every route, PATCH and PUT listed separately. The docs routes describe themselves. */
export const allRoutes: RouteSpec[] = Object.values(routes).flat() as RouteSpec[]
