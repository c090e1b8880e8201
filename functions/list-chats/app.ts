import { routes } from '../../lib/api/routes.ts'
import { listChats } from '../../lib/chats.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { queryParams, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type ListChatsDeps = { db: Db; logger: Logger }

const route = routes.listChats

export const createListChatsApp = (deps: ListChatsDeps) =>
  createApi(deps.logger).get(route.path, queryParams(route.query), async (c) =>
    c.json(await listChats(deps, tokenParam(c), c.get('query')), 200),
  )
