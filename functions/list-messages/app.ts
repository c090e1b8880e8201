import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { numberParam, queryParams, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { listMessages } from '../../lib/messages.ts'

export type ListMessagesDeps = { db: Db; logger: Logger }

const route = routes.listMessages

export const createListMessagesApp = (deps: ListMessagesDeps) =>
  createApi(deps.logger).get(route.path, queryParams(route.query), async (c) =>
    c.json(await listMessages(deps, tokenParam(c), numberParam(c, 'chat'), c.get('query')), 200),
  )
