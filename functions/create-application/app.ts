import { routes } from '../../lib/api/routes.ts'
import { type ApplicationDeps, createApplication } from '../../lib/applications.ts'
import { createApi } from '../../lib/http/api.ts'
import { jsonBody } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type CreateApplicationDeps = ApplicationDeps & { logger: Logger }

const route = routes.createApplication

export const createCreateApplicationApp = (deps: CreateApplicationDeps) =>
  createApi(deps.logger).post(route.path, jsonBody(route.body), async (c) => {
    const application = await createApplication(deps, c.get('body'))
    return c.json(application, 201, { Location: `/applications/${application.token}` })
  })
