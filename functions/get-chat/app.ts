import { routes } from '../../lib/api/routes.ts'
import { getChat } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type GetChatDeps = { db: Db; logger: Logger }

export const createGetChatApp = (deps: GetChatDeps) =>
  defineRoute(createApi(deps.logger), routes.getChat, async (c) => {
    const { token, chat } = c.req.valid('param')
    return c.json(await getChat(deps, token, chat), 200)
  })
