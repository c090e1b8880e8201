// The load generator, in a process of its own: one run described by a JSON argument, figures back
// to the parent over IPC. Without a rate, autocannon's closed loop (each connection sends its next
// request when the last one is answered). With a rate, an open loop of our own, because
// autocannon's rate is a budget per connection and second, spent as fast as it goes at the start
// of each second: "half the maximum rate" was then the maximum rate half of each second.
import http from 'node:http'
import autocannon from 'autocannon'

export interface LoadSpec {
  url: string
  method?: 'GET' | 'POST'
  body?: string
  connections: number
  durationS: number
  /** Requests per second over all connections, evenly spaced; as fast as it goes when absent. */
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

const TIMEOUT_MS = 10_000 // autocannon's

const closedLoop = async (spec: LoadSpec): Promise<Figures> => {
  const result = await autocannon({
    url: spec.url,
    method: spec.method ?? 'GET',
    connections: spec.connections,
    duration: spec.durationS,
    ...(spec.body !== undefined && { body: spec.body, headers: { 'content-type': 'application/json' } }),
  })
  return {
    requests_per_s: Math.round(result.requests.average),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    accepted: result['2xx'],
    errors: result.errors + result.timeouts,
    non_2xx: result.non2xx,
  }
}

/**
 * `rate` requests a second, each sent when it is due (checked every millisecond), at most
 * `connections` at once: past that, requests queue in the agent. Latency counts from when a request
 * was due, not from when it left, so a server that stalls is charged for the requests it held back
 * (no coordinated omission). req/s is what was answered 2xx over the time the run took.
 */
const openLoop = async (spec: LoadSpec & { rate: number }): Promise<Figures> => {
  const url = new URL(spec.url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections })
  const headers =
    spec.body === undefined
      ? {}
      : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(spec.body) }
  const total = Math.round(spec.rate * spec.durationS)
  const latencies: number[] = []
  const figures = { accepted: 0, errors: 0, non_2xx: 0 }
  let settled = 0
  const started = performance.now()
  await new Promise<void>((resolve) => {
    const settle = (dueAt: number, status?: number) => {
      latencies.push(performance.now() - dueAt)
      if (status === undefined) figures.errors++
      else if (status >= 200 && status < 300) figures.accepted++
      else figures.non_2xx++
      if (++settled === total) resolve()
    }
    const send = (dueAt: number) => {
      let isSettled = false
      const finish = (status?: number) => {
        if (isSettled) return
        isSettled = true
        settle(dueAt, status)
      }
      const request = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method: spec.method ?? 'GET',
          headers,
        },
        (response) => {
          response.resume()
          response.once('end', () => finish(response.statusCode))
          response.once('error', () => finish())
        },
      )
      request.setTimeout(TIMEOUT_MS, () => request.destroy(new Error('timed out')))
      request.once('error', () => finish())
      request.end(spec.body)
    }
    let sent = 0
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * spec.rate))
      for (; sent < due; sent++) send(started + (sent * 1000) / spec.rate)
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const at = (p: number) => Math.round(latencies[Math.min(total - 1, Math.ceil(p * total) - 1)]!)
  return {
    requests_per_s: Math.round(figures.accepted / ((performance.now() - started) / 1000)),
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    ...figures,
  }
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec
const figures = spec.rate ? await openLoop({ ...spec, rate: spec.rate }) : await closedLoop(spec)
process.send!(figures, () => process.exit(0))
