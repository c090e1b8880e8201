import { routes } from '../../lib/api/routes.ts'
import { listChats } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type ListChatsDeps = { db: Db; logger: Logger }

export const createListChatsApp = (deps: ListChatsDeps) =>
  defineRoute(createApi(deps.logger), routes.listChats, async (c) =>
    c.json(await listChats(deps, c.req.valid('param').token, c.req.valid('query')), 200),
  )
