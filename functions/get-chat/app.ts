import { routes } from '../../lib/api/routes.ts'
import { getChat } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type GetChatDeps = { db: Db; logger: Logger }

export const createGetChatApp = (deps: GetChatDeps) =>
  defineRoute(createApi(deps.logger), routes.getChat, async (c) =>
    c.json(await getChat(deps, tokenParam(c), numberParam(c, 'chat')), 200),
  )
