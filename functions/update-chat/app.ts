import { routes } from '../../lib/api/routes.ts'
import { type AcceptDeps, chatPath, updateChat } from '../../lib/chats.ts'
import { createApi, responseHeader } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type UpdateChatDeps = AcceptDeps & { logger: Logger }

export const createUpdateChatApp = (deps: UpdateChatDeps) =>
  defineRoute(createApi(deps.logger), routes.updateChat, async (c) => {
    const { token, chat } = c.req.valid('param')
    const number = await updateChat(deps, token, chat, c.req.valid('json'), {
      requestId: c.get('requestId'),
    })
    responseHeader(c, 'Location', chatPath(token, number))
    return c.json({ number }, 202)
  })
