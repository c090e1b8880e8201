import { routes } from '../../lib/api/routes.ts'
import type { AcceptDeps } from '../../lib/chats.ts'
import { createApi } from '../../lib/http/api.ts'
import { idempotencyKeyHeader, jsonBody, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { createMessage, messagePath } from '../../lib/messages.ts'

export type CreateMessageDeps = AcceptDeps & { logger: Logger }

const route = routes.createMessage

export const createCreateMessageApp = (deps: CreateMessageDeps) =>
  createApi(deps.logger).post(route.path, jsonBody(route.body), async (c) => {
    const token = tokenParam(c)
    const chat = numberParam(c, 'chat')
    const number = await createMessage(deps, token, chat, c.get('body'), {
      idempotencyKey: idempotencyKeyHeader(c),
      requestId: c.get('requestId'),
    })
    return c.json({ number }, 202, { Location: messagePath(token, chat, number) })
  })
