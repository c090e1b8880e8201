// The load generator, in a process of its own: one autocannon run described by a JSON argument,
// figures back to the parent over IPC.
import autocannon from 'autocannon'

export interface LoadSpec {
  url: string
  method?: 'GET' | 'POST'
  body?: string
  connections: number
  durationS: number
  /** Requests per second over all connections; unlimited when absent. */
  rate?: number
}

export interface Figures {
  requests_per_s: number
  p50_ms: number
  p99_ms: number
  accepted: number
  errors: number
  non_2xx: number
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec
const result = await autocannon({
  url: spec.url,
  method: spec.method ?? 'GET',
  connections: spec.connections,
  duration: spec.durationS,
  ...(spec.rate && { overallRate: spec.rate }),
  ...(spec.body !== undefined && { body: spec.body, headers: { 'content-type': 'application/json' } }),
})
const figures: Figures = {
  requests_per_s: Math.round(result.requests.average),
  p50_ms: result.latency.p50,
  p99_ms: result.latency.p99,
  accepted: result['2xx'],
  errors: result.errors + result.timeouts,
  non_2xx: result.non2xx,
}
process.send!(figures, () => process.exit(0))
