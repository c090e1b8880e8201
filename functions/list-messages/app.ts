import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { listMessages } from '../../lib/messages.ts'

export type ListMessagesDeps = { db: Db; logger: Logger }

export const createListMessagesApp = (deps: ListMessagesDeps) =>
  defineRoute(createApi(deps.logger), routes.listMessages, async (c) => {
    const { token, chat } = c.req.valid('param')
    return c.json(await listMessages(deps, token, chat, c.req.valid('query')), 200)
  })
