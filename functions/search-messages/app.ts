import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Search } from '../../lib/search/client.ts'
import { searchMessages } from '../../lib/search/resolve-chat.ts'

export type SearchMessagesDeps = { db: Db; search: Pick<Search, 'search'>; logger: Logger }

export const createSearchMessagesApp = (deps: SearchMessagesDeps) =>
  defineRoute(createApi(deps.logger), routes.searchMessages, async (c) => {
    const { token, chat } = c.req.valid('param')
    return c.json(await searchMessages(deps, token, chat, c.req.valid('query')), 200)
  })
