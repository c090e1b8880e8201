import { routes } from '../../lib/api/routes.ts'
import type { AcceptDeps } from '../../lib/chats.ts'
import { createApi, responseHeader } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { createMessage, messagePath } from '../../lib/messages.ts'

export type CreateMessageDeps = AcceptDeps & { logger: Logger }

export const createCreateMessageApp = (deps: CreateMessageDeps) =>
  defineRoute(createApi(deps.logger), routes.createMessage, async (c) => {
    const { token, chat } = c.req.valid('param')
    const number = await createMessage(deps, token, chat, c.req.valid('json'), {
      idempotencyKey: c.req.valid('header').idempotencyKey,
      requestId: c.get('requestId'),
    })
    responseHeader(c, 'Location', messagePath(token, chat, number))
    return c.json({ number }, 202)
  })
