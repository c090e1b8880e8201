import { routes } from '../../lib/api/routes.ts'
import { UnavailableError } from '../../lib/errors.ts'
import { createApi } from '../../lib/http/api.ts'
import type { Logger } from '../../lib/logger.ts'

export interface HealthDeps {
  logger: Logger
  probes: Record<string, () => Promise<unknown>>
}

const PROBE_TIMEOUT_MS = 1_500

const isUp = async (probe: () => Promise<unknown>) => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), PROBE_TIMEOUT_MS)
  })
  try {
    await Promise.race([probe(), timeout])
    return true
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}

export const createHealthApp = (deps: HealthDeps) =>
  createApi(deps.logger)
    .get(routes.health.path, (c) => c.json({ status: 'ok' as const }))
    .get(routes.ready.path, async (c) => {
      const names = Object.keys(deps.probes)
      const results = await Promise.all(names.map((name) => isUp(deps.probes[name]!)))
      const down = names.filter((_, i) => !results[i])
      if (down.length > 0) {
        throw new UnavailableError(`not ready: ${down.join(', ')}`, {
          retryAfterSeconds: 5,
          details: down.map((name) => ({ field: name, message: `${name} does not answer` })),
        })
      }
      return c.json({
        status: 'ready' as const,
        services: Object.fromEntries(names.map((name) => [name, 'up'])),
      })
    })
