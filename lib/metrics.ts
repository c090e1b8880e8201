import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client'
import type { QueueName } from './queue/provisioning.ts'

// What the process measures, and where it goes. One sink per process: the server keeps Prometheus
// instruments and serves them on GET /metrics; a Lambda has no scrape endpoint, so it writes the
// same counters and histograms as CloudWatch Embedded Metric Format lines on stdout; `off` drops
// them (METRICS_ENABLED=false). Hooks in the request middleware, the queue, the consumers, search
// and the reconciler call the functions below. The per-request one costs a few map lookups and
// increments; the per-batch ones use children of prom-client instruments bound once per label set.

export type MetricsMode = 'prometheus' | 'emf' | 'off'

/** Everything the hooks report. Durations are in milliseconds, lags in seconds. */
interface Sink {
  request(method: string, route: string, status: number, ms: number): void
  jobsAccepted(queue: QueueName, count: number): void
  jobsPersisted(queue: QueueName, lagsSeconds: readonly number[]): void
  search(ms: number): void
  reconcile(mode: string, outcome: 'ok' | 'skipped' | 'error', ms: number): void
  liveWrite(seconds: number): void
}

const registry = new Registry()

const PREFIX = 'chat_'
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

// HTTP requests are counted in plain numbers, one series per method and route (a status map, the
// duration buckets): recording one is a few map lookups and increments, with nothing allocated.
// prom-client's labelled children build and hash a label set on every call (over a microsecond for
// a counter and a histogram here, against under 0.2 µs for this); these two families hand their
// values to the registry only when scraped.
interface RouteSeries {
  labels: { method: string; route: string }
  statuses: Map<number, number>
  /** Observations per bucket (not cumulative), the last one above every bound. */
  buckets: Float64Array
  sum: number
  count: number
}
const requestSeries = new Map<string, Map<string, RouteSeries>>()
const allRequestSeries = () => [...requestSeries.values()].flatMap((routes) => [...routes.values()])

type ScrapedValue = { metricName?: string; labels: Record<string, string | number>; value: number }

/** Registers a family whose values are read from our own numbers at scrape time. */
const registerScraped = (
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  values: () => ScrapedValue[],
) => {
  const family = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => requestSeries.clear(),
  }
  // The registry reads a metric only through get() (and reset()): this object is all it needs.
  registry.registerMetric(family as unknown as Metric)
}

registerScraped(
  `${PREFIX}http_requests_total`,
  'HTTP requests answered, by method, route pattern and status',
  'counter',
  () =>
    allRequestSeries().flatMap(({ labels, statuses }) =>
      [...statuses].map(([status, value]) => ({ labels: { ...labels, status }, value })),
    ),
)

const DURATION = `${PREFIX}http_request_duration_seconds`
registerScraped(
  DURATION,
  'Time from the request to the response, by method and route pattern',
  'histogram',
  () =>
    allRequestSeries().flatMap(({ labels, buckets, sum, count }) => {
      let cumulative = 0
      return [
        ...LATENCY_BUCKETS.map((le, i) => {
          cumulative += buckets[i]!
          return { metricName: `${DURATION}_bucket`, labels: { ...labels, le }, value: cumulative }
        }),
        { metricName: `${DURATION}_bucket`, labels: { ...labels, le: '+Inf' }, value: count },
        { metricName: `${DURATION}_sum`, labels, value: sum },
        { metricName: `${DURATION}_count`, labels, value: count },
      ]
    }),
)

const jobsAcceptedTotal = new Counter({
  name: `${PREFIX}jobs_accepted_total`,
  help: 'Jobs SQS accepted (each one a 202 answered), by queue',
  labelNames: ['queue'],
  registers: [registry],
})
const jobsPersistedTotal = new Counter({
  name: `${PREFIX}jobs_persisted_total`,
  help: 'Jobs committed to MySQL by the consumers, by queue',
  labelNames: ['queue'],
  registers: [registry],
})
const persistLag = new Histogram({
  name: `${PREFIX}job_persist_lag_seconds`,
  help: 'Time from the API accepting a job to its MySQL commit, by queue',
  labelNames: ['queue'],
  buckets: LAG_BUCKETS,
  registers: [registry],
})
const searchDuration = new Histogram({
  name: `${PREFIX}search_duration_seconds`,
  help: 'Time the search engine took to answer a message search (errors included)',
  buckets: LATENCY_BUCKETS,
  registers: [registry],
})
const liveDelay = new Histogram({
  name: `${PREFIX}live_delivery_delay_seconds`,
  help: "Time from a message's append to its chat's live log (after its commit) to its write to a subscriber's stream; the oldest event of each write",
  buckets: LATENCY_BUCKETS,
  registers: [registry],
})
const reconcileRuns = new Counter({
  name: `${PREFIX}reconcile_runs_total`,
  help: 'Runs of the count reconciler, by mode and outcome (ok, skipped: another server held the lock, error)',
  labelNames: ['mode', 'outcome'],
  registers: [registry],
})
const reconcileDuration = new Histogram({
  name: `${PREFIX}reconcile_duration_seconds`,
  help: 'Duration of the count reconciler runs, by mode',
  labelNames: ['mode'],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
  registers: [registry],
})

/** SQS messages (packs of up to 25 jobs) per queue and state, refreshed by the backlog monitor. */
export const queueMessages = new Gauge({
  name: `${PREFIX}queue_messages`,
  help: 'SQS messages (each a pack of up to 25 jobs) by queue and state: visible, in_flight, dead_letter',
  labelNames: ['queue', 'state'],
  registers: [registry],
})
/** Persisted messages whose search index write has not landed yet, refreshed by the backlog monitor. */
export const searchIndexPending = new Gauge({
  name: `${PREFIX}search_index_pending`,
  help: 'Persisted messages not yet in the search index (waiting for the retry-indexing job)',
  registers: [registry],
})
/** When the backlog gauges were last read successfully, as a Unix time. */
export const backlogUpdated = new Gauge({
  name: `${PREFIX}backlog_updated_timestamp_seconds`,
  help: 'Unix time of the last successful read of the queue depths and the index backlog',
  registers: [registry],
})

const bufferSources = new Set<() => Record<QueueName, number>>()
new Gauge({
  name: `${PREFIX}queue_buffer_jobs`,
  help: 'Jobs waiting in the write-behind buffer of this process for their SendMessageBatch, by queue',
  labelNames: ['queue'],
  registers: [registry],
  collect() {
    const depth = { chats: 0, messages: 0 }
    for (const source of bufferSources) {
      const counts = source()
      depth.chats += counts.chats
      depth.messages += counts.messages
    }
    this.set({ queue: 'chats' }, depth.chats)
    this.set({ queue: 'messages' }, depth.messages)
  },
})

/**
 * Reports the depth of a write-behind buffer at every scrape, until the returned function is called.
 *
 * @example const untrack = trackBufferDepth(() => ({ chats: pending.chats.length, messages: pending.messages.length }))
 */
export const trackBufferDepth = (depth: () => Record<QueueName, number>) => {
  bufferSources.add(depth)
  return () => {
    bufferSources.delete(depth)
  }
}

// The default process and Node metrics (event-loop delay sampling among them) start with the first
// Prometheus use, so that a Lambda, which never serves them, does not pay for them.
let isCollectingDefaults = false
const collectDefaults = () => {
  if (isCollectingDefaults) return
  isCollectingDefaults = true
  collectDefaultMetrics({ register: registry })
}

const routeLabels = new Map<string, string>()
/** The route pattern as a label: `/chats/:chat{[0-9]+}` reads `/chats/:chat`. Computed once per route. */
const routeLabel = (route: string) => {
  let label = routeLabels.get(route)
  if (label === undefined) {
    label = route.replace(/\{[^}]*\}/g, '')
    routeLabels.set(route, label)
  }
  return label
}

const byQueue = <T>(make: (queue: QueueName) => T): Record<QueueName, T> => ({
  chats: make('chats'),
  messages: make('messages'),
})

const createPrometheusSink = (): Sink => {
  const accepted = byQueue((queue) => jobsAcceptedTotal.labels(queue))
  const persisted = byQueue((queue) => jobsPersistedTotal.labels(queue))
  const lag = byQueue((queue) => persistLag.labels(queue))
  return {
    request: (method, route, status, ms) => {
      let routes = requestSeries.get(method)
      if (!routes) {
        routes = new Map()
        requestSeries.set(method, routes)
      }
      let series = routes.get(route)
      if (!series) {
        series = {
          labels: { method, route: routeLabel(route) },
          statuses: new Map(),
          buckets: new Float64Array(LATENCY_BUCKETS.length + 1),
          sum: 0,
          count: 0,
        }
        routes.set(route, series)
      }
      series.statuses.set(status, (series.statuses.get(status) ?? 0) + 1)
      const seconds = ms / 1000
      let bucket = 0
      while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]!) bucket++
      series.buckets[bucket]!++
      series.sum += seconds
      series.count++
    },
    jobsAccepted: (queue, count) => accepted[queue].inc(count),
    jobsPersisted: (queue, lags) => {
      persisted[queue].inc(lags.length)
      for (const seconds of lags) lag[queue].observe(seconds)
    },
    search: (ms) => searchDuration.observe(ms / 1000),
    reconcile: (mode, outcome, ms) => {
      reconcileRuns.labels(mode, outcome).inc()
      reconcileDuration.labels(mode).observe(ms / 1000)
    },
    liveWrite: (seconds) => liveDelay.observe(seconds),
  }
}

/** The CloudWatch namespace of the Embedded Metric Format lines. */
export const EMF_NAMESPACE = 'ChatSystem'

/**
 * Writes each report as one CloudWatch Embedded Metric Format line: CloudWatch Logs turns it into
 * metrics, with no agent and no API call from the function.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export const createEmfSink = (write: (line: string) => void, now: () => number = Date.now): Sink => {
  const emit = (
    directives: Array<{ dimensions: string[]; metrics: Array<[name: string, unit: string]> }>,
    fields: Record<string, unknown>,
  ) =>
    write(
      JSON.stringify({
        _aws: {
          Timestamp: now(),
          CloudWatchMetrics: directives.map(({ dimensions, metrics }) => ({
            Namespace: EMF_NAMESPACE,
            Dimensions: [dimensions],
            Metrics: metrics.map(([Name, Unit]) => ({ Name, Unit })),
          })),
        },
        ...fields,
      }),
    )
  return {
    request: (method, route, status, ms) =>
      emit(
        [
          { dimensions: ['method', 'route', 'status'], metrics: [['http_requests_total', 'Count']] },
          { dimensions: ['method', 'route'], metrics: [['http_request_duration_seconds', 'Seconds']] },
        ],
        {
          method,
          route: routeLabel(route),
          status: String(status),
          http_requests_total: 1,
          http_request_duration_seconds: ms / 1000,
        },
      ),
    jobsAccepted: (queue, count) =>
      emit([{ dimensions: ['queue'], metrics: [['jobs_accepted_total', 'Count']] }], {
        queue,
        jobs_accepted_total: count,
      }),
    jobsPersisted: (queue, lags) => {
      // EMF takes at most 100 values per metric in one line.
      for (let start = 0; start < lags.length; start += 100) {
        const slice = lags.slice(start, start + 100)
        emit(
          [
            {
              dimensions: ['queue'],
              metrics: [
                ['jobs_persisted_total', 'Count'],
                ['job_persist_lag_seconds', 'Seconds'],
              ],
            },
          ],
          { queue, jobs_persisted_total: slice.length, job_persist_lag_seconds: slice },
        )
      }
    },
    search: (ms) =>
      emit([{ dimensions: [], metrics: [['search_duration_seconds', 'Seconds']] }], {
        search_duration_seconds: ms / 1000,
      }),
    reconcile: (mode, outcome, ms) =>
      emit(
        [
          { dimensions: ['mode', 'outcome'], metrics: [['reconcile_runs_total', 'Count']] },
          { dimensions: ['mode'], metrics: [['reconcile_duration_seconds', 'Seconds']] },
        ],
        { mode, outcome, reconcile_runs_total: 1, reconcile_duration_seconds: ms / 1000 },
      ),
    // A log line per write to a stream would cost more than the write: on Lambda, a stream's
    // delivery delay is left to the function URL's own metrics and the client's measure.
    liveWrite: () => undefined,
  }
}

const noop = () => {}
const offSink: Sink = {
  request: noop,
  jobsAccepted: noop,
  jobsPersisted: noop,
  search: noop,
  reconcile: noop,
  liveWrite: noop,
}

const prometheusSink = createPrometheusSink()
let sink: Sink = prometheusSink

/**
 * Chooses where the hooks report, for the whole process: called once at start by createDeps.
 *
 * @example useMetrics(config.METRICS_ENABLED ? (isLambda ? 'emf' : 'prometheus') : 'off')
 */
export const useMetrics = (
  mode: MetricsMode,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
) => {
  sink = mode === 'prometheus' ? prometheusSink : mode === 'emf' ? createEmfSink(write) : offSink
  if (mode === 'prometheus') collectDefaults()
}

/** The request middleware's hook: one answered request, by route pattern (never the URL). */
export const recordRequest = (method: string, route: string, status: number, ms: number) =>
  sink.request(method, route, status, ms)

/** The queue's hook: jobs SQS accepted. */
export const recordJobsAccepted = (queue: QueueName, count: number) => sink.jobsAccepted(queue, count)

/** The consumers' hook: jobs committed, with their lag from acceptance in seconds. */
export const recordJobsPersisted = (queue: QueueName, lagsSeconds: readonly number[]) =>
  sink.jobsPersisted(queue, lagsSeconds)

/** The live hub's hook: a write of live events to a stream, `seconds` after the oldest was appended. */
export const recordLiveWrite = (seconds: number) => sink.liveWrite(seconds)

/** Wraps a search function so that each call's duration is recorded, failures included. */
export const timeSearch =
  <A extends unknown[], R>(search: (...args: A) => Promise<R>) =>
  async (...args: A): Promise<R> => {
    const started = performance.now()
    try {
      return await search(...args)
    } finally {
      sink.search(performance.now() - started)
    }
  }

/** Runs one reconciliation and records its outcome and duration. */
export const timeReconcile = async <R extends { mode: string; skipped?: true }>(
  mode: string | undefined,
  run: () => Promise<R>,
): Promise<R> => {
  const started = performance.now()
  try {
    const summary = await run()
    sink.reconcile(summary.mode, summary.skipped ? 'skipped' : 'ok', performance.now() - started)
    return summary
  } catch (error) {
    sink.reconcile(mode ?? 'unknown', 'error', performance.now() - started)
    throw error
  }
}

/** The Prometheus text exposition of every metric of this process. */
export const renderMetrics = async () => {
  collectDefaults()
  return { contentType: registry.contentType, body: await registry.metrics() }
}
