import { routes } from '../../lib/api/routes.ts'
import type { AcceptDeps } from '../../lib/chats.ts'
import { createApi, responseHeader } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { messagePath, updateMessage } from '../../lib/messages.ts'

export type UpdateMessageDeps = AcceptDeps & { logger: Logger }

export const createUpdateMessageApp = (deps: UpdateMessageDeps) =>
  defineRoute(createApi(deps.logger), routes.updateMessage, async (c) => {
    const { token, chat, message } = c.req.valid('param')
    const number = await updateMessage(deps, token, chat, message, c.req.valid('json'), {
      requestId: c.get('requestId'),
    })
    responseHeader(c, 'Location', messagePath(token, chat, number))
    return c.json({ number }, 202)
  })
