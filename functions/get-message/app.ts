import { routes } from '../../lib/api/routes.ts'
import type { Db } from '../../lib/db.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute, numberParam, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'
import { getMessage } from '../../lib/messages.ts'

export type GetMessageDeps = { db: Db; logger: Logger }

export const createGetMessageApp = (deps: GetMessageDeps) =>
  defineRoute(createApi(deps.logger), routes.getMessage, async (c) =>
    c.json(await getMessage(deps, tokenParam(c), numberParam(c, 'chat'), numberParam(c, 'message')), 200),
  )
