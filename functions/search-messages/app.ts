import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { numberParam, queryParams, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Search } from '../../lib/search/client.ts'
import { searchMessages } from '../../lib/search/resolve-chat.ts'

export type SearchMessagesDeps = { db: Db; search: Pick<Search, 'search'>; logger: Logger }

const route = routes.searchMessages

export const createSearchMessagesApp = (deps: SearchMessagesDeps) =>
  createApi(deps.logger).get(route.path, queryParams(route.query, { requiredFields: ['q'] }), async (c) =>
    c.json(await searchMessages(deps, tokenParam(c), numberParam(c, 'chat'), c.get('query')), 200),
  )
