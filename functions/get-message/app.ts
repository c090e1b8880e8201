import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { getMessage } from '../../lib/messages.ts'

export type GetMessageDeps = { db: Db; logger: Logger }

export const createGetMessageApp = (deps: GetMessageDeps) =>
  defineRoute(createApi(deps.logger), routes.getMessage, async (c) => {
    const { token, chat, message } = c.req.valid('param')
    return c.json(await getMessage(deps, token, chat, message), 200)
  })
