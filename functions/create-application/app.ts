import { routes } from '../../lib/api/routes.ts'
import { type ApplicationDeps, createApplication } from '../../lib/applications.ts'
import { createApi, responseHeader } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type CreateApplicationDeps = ApplicationDeps & { logger: Logger }

export const createCreateApplicationApp = (deps: CreateApplicationDeps) =>
  defineRoute(createApi(deps.logger), routes.createApplication, async (c) => {
    const application = await createApplication(deps, c.req.valid('json'))
    responseHeader(c, 'Location', `/applications/${application.token}`)
    return c.json(application, 201)
  })
