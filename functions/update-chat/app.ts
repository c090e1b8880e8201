import { routes } from '../../lib/api/routes.ts'
import { type AcceptDeps, chatPath, updateChat } from '../../lib/chats.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type UpdateChatDeps = AcceptDeps & { logger: Logger }

export const createUpdateChatApp = (deps: UpdateChatDeps) =>
  defineRoute(createApi(deps.logger), routes.updateChat, async (c) => {
    const token = tokenParam(c)
    const number = await updateChat(deps, token, numberParam(c, 'chat'), c.req.valid('json'), {
      requestId: c.get('requestId'),
    })
    return c.json({ number }, 202, { Location: chatPath(token, number) })
  })
