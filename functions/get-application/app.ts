import { routes } from '../../lib/api/routes.ts'
import { type ApplicationDeps, getApplication } from '../../lib/applications.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type GetApplicationDeps = Pick<ApplicationDeps, 'db'> & { logger: Logger }

export const createGetApplicationApp = (deps: GetApplicationDeps) =>
  defineRoute(createApi(deps.logger), routes.getApplication, async (c) =>
    c.json(await getApplication(deps, c.req.valid('param').token), 200),
  )
