import { routes } from '../../lib/api/routes.ts'
import { type ApplicationDeps, updateApplication } from '../../lib/applications.ts'
import { createApi } from '../../lib/http/api.ts'
import { jsonBody, tokenParam } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export type UpdateApplicationDeps = Pick<ApplicationDeps, 'db' | 'clock'> & { logger: Logger }

const [route] = routes.updateApplication

export const createUpdateApplicationApp = (deps: UpdateApplicationDeps) =>
  createApi(deps.logger).on(['PATCH', 'PUT'], route.path, jsonBody(route.body), async (c) =>
    c.json(await updateApplication(deps, tokenParam(c), c.get('body')), 200),
  )
