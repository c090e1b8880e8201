import { routes } from '../../lib/api/routes.ts'
import { type AcceptDeps, chatPath, createChat } from '../../lib/chats.ts'
import { createApi, responseHeader } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type CreateChatDeps = AcceptDeps & { logger: Logger }

export const createCreateChatApp = (deps: CreateChatDeps) =>
  defineRoute(createApi(deps.logger), routes.createChat, async (c) => {
    const { token } = c.req.valid('param')
    const number = await createChat(deps, token, c.req.valid('json'), {
      idempotencyKey: c.req.valid('header').idempotencyKey,
      requestId: c.get('requestId'),
    })
    responseHeader(c, 'Location', chatPath(token, number))
    return c.json({ number }, 202)
  })
