import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { listMessages } from '../../lib/messages.ts'

export type ListMessagesDeps = { db: Db; logger: Logger }

export const createListMessagesApp = (deps: ListMessagesDeps) =>
  defineRoute(createApi(deps.logger), routes.listMessages, async (c) =>
    c.json(await listMessages(deps, tokenParam(c), numberParam(c, 'chat'), c.req.valid('query')), 200),
  )
