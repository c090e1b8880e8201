import { routes } from '../../lib/api/routes.ts'
import type { Backlog } from '../../lib/backlog.ts'
import { UnavailableError } from '../../lib/errors.ts'
import { createApi } from '../../lib/http/api.ts'
import { defineRoute } from '../../lib/http/validate.ts'
import type { Logger } from '../../lib/logger.ts'

export interface HealthDeps {
  logger: Logger
  probes: Record<string, () => Promise<unknown>>
  /** What waits in the queues and for the index: shown, never a reason to be unready. */
  backlog?: { current(): Promise<Backlog> }
}

const PROBE_TIMEOUT_MS = 1_500

/** The probe's answer, or undefined when it fails or takes longer than the probe timeout. */
const answerOf = async <T>(probe: () => Promise<T>): Promise<T | undefined> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), PROBE_TIMEOUT_MS)
  })
  try {
    return await Promise.race([probe(), timeout])
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

const isUp = (probe: () => Promise<unknown>) => answerOf(() => probe().then(() => true)).then(Boolean)

export const createHealthApp = (deps: HealthDeps) => {
  const app = defineRoute(createApi(deps.logger), routes.health, (c) => c.json({ status: 'ok' as const }))
  return defineRoute(app, routes.ready, async (c) => {
    const names = Object.keys(deps.probes)
    const [backlog, ...results] = await Promise.all([
      deps.backlog && answerOf(() => deps.backlog!.current()),
      ...names.map((name) => isUp(deps.probes[name]!)),
    ])
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
      // A dead-letter queue that is not empty needs an operator, not a restart: it stays ready.
      ...(deps.backlog && { backlog: backlog ?? null }),
    })
  })
}
