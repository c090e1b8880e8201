import type { Config } from '../../lib/config.ts'
import { NotFoundError } from '../../lib/errors.ts'
import { createApi } from '../../lib/http/api.ts'
import type { Logger } from '../../lib/logger.ts'
import { renderMetrics } from '../../lib/metrics.ts'

export interface MetricsDeps {
  logger: Logger
  config: Pick<Config, 'METRICS_ENABLED'>
}

// Server only: a Lambda has no process to scrape, so it writes the same counters as CloudWatch
// Embedded Metric Format lines instead (lib/metrics.ts), and there is no lambda.ts here.
export const createMetricsApp = (deps: MetricsDeps) =>
  createApi(deps.logger).get('/metrics', async (c) => {
    if (!deps.config.METRICS_ENABLED) throw new NotFoundError('metrics are off (METRICS_ENABLED=false)')
    const { contentType, body } = await renderMetrics()
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' })
  })
