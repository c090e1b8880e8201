import { routes } from '../../lib/api/routes.ts'
import { type ApplicationDeps, updateApplication } from '../../lib/applications.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type UpdateApplicationDeps = Pick<ApplicationDeps, 'db' | 'clock'> & { logger: Logger }

export const createUpdateApplicationApp = (deps: UpdateApplicationDeps) =>
  defineRoute(createApi(deps.logger), routes.updateApplication, async (c) =>
    c.json(await updateApplication(deps, c.req.valid('param').token, c.req.valid('json')), 200),
  )
