import { routes } from '../../lib/api/routes.ts'
import { type AcceptDeps, chatPath, createChat } from '../../lib/chats.ts'
import { createApi } from '../../lib/http/api.ts'
import { idempotencyKeyHeader, jsonBody, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type CreateChatDeps = AcceptDeps & { logger: Logger }

const route = routes.createChat

export const createCreateChatApp = (deps: CreateChatDeps) =>
  createApi(deps.logger).post(route.path, jsonBody(route.body, { isOptional: true }), async (c) => {
    const token = tokenParam(c)
    const number = await createChat(deps, token, c.get('body'), {
      idempotencyKey: idempotencyKeyHeader(c),
      requestId: c.get('requestId'),
    })
    return c.json({ number }, 202, { Location: chatPath(token, number) })
  })
