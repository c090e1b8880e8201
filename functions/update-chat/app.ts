import { routes } from '../../lib/api/routes.ts'
import { type AcceptDeps, chatPath, updateChat } from '../../lib/chats.ts'
import { createApi } from '../../lib/http/api.ts'
import { jsonBody, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type UpdateChatDeps = AcceptDeps & { logger: Logger }

const [route] = routes.updateChat

export const createUpdateChatApp = (deps: UpdateChatDeps) =>
  createApi(deps.logger).on(['PATCH', 'PUT'], route.path, jsonBody(route.body), async (c) => {
    const token = tokenParam(c)
    const number = await updateChat(deps, token, numberParam(c, 'chat'), c.get('body'), {
      requestId: c.get('requestId'),
    })
    return c.json({ number }, 202, { Location: chatPath(token, number) })
  })
