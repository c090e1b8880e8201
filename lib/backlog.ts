import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { Logger } from './logger.ts'
import { backlogUpdated, queueMessages, searchIndexPending } from './metrics.ts'
import type { QueueName } from './queue/provisioning.ts'

/** SQS messages (packs of up to 25 jobs) of one queue, by state. */
export interface QueueDepth {
  visible: number
  in_flight: number
  dead_letter: number
}

/** What waits: the queues' depths and the persisted messages not yet indexed. */
export interface Backlog {
  queues: Record<QueueName, QueueDepth>
  search_index_pending: number
  /** When these numbers were read. */
  as_of: string
}

export interface BacklogDeps {
  sqs: SQSClient
  queueUrls: () => Promise<Record<QueueName, string>>
  deadLetterUrls: () => Promise<Record<QueueName, string>>
  /** The persisted messages whose index write has not landed (lib/search/outbox.ts countUnindexed). */
  countIndexPending: () => Promise<number>
  logger: Pick<Logger, 'warn'>
}

/** At most one read of SQS and the outbox per this interval, however many scrapes and probes ask. */
export const BACKLOG_MAX_AGE_MS = 15_000

const messagesIn = async (
  sqs: SQSClient,
  url: string,
  names: Array<
    | 'ApproximateNumberOfMessages'
    | 'ApproximateNumberOfMessagesNotVisible'
    | 'ApproximateNumberOfMessagesDelayed'
  >,
) => {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names }),
  )
  return names.map((name) => Number(Attributes[name] ?? 0))
}

/** Reads the queues' and dead-letter queues' depths and the index backlog, now. */
export const readBacklog = async (deps: Omit<BacklogDeps, 'logger'>, now = new Date()): Promise<Backlog> => {
  const [urls, deadLetterUrls] = await Promise.all([deps.queueUrls(), deps.deadLetterUrls()])
  const depthOf = async (queue: QueueName): Promise<QueueDepth> => {
    const [[visible, delayed, inFlight], [deadVisible, deadInFlight]] = await Promise.all([
      messagesIn(deps.sqs, urls[queue], [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesDelayed',
        'ApproximateNumberOfMessagesNotVisible',
      ]),
      messagesIn(deps.sqs, deadLetterUrls[queue], [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
      ]),
    ])
    return { visible: visible! + delayed!, in_flight: inFlight!, dead_letter: deadVisible! + deadInFlight! }
  }
  const [chats, messages, pending] = await Promise.all([
    depthOf('chats'),
    depthOf('messages'),
    deps.countIndexPending(),
  ])
  return { queues: { chats, messages }, search_index_pending: pending, as_of: now.toISOString() }
}

const setGauges = (backlog: Backlog) => {
  for (const [queue, depth] of Object.entries(backlog.queues)) {
    for (const [state, count] of Object.entries(depth)) queueMessages.set({ queue, state }, count)
  }
  searchIndexPending.set(backlog.search_index_pending)
  backlogUpdated.set(Date.parse(backlog.as_of) / 1000)
}

export interface BacklogMonitor {
  /** The latest backlog, read again only if older than BACKLOG_MAX_AGE_MS; one read at a time. */
  current(): Promise<Backlog>
  /** Refreshes the gauges every BACKLOG_MAX_AGE_MS in the background, until stopped. */
  start(): { stop(): void }
}

/**
 * Caches the backlog for GET /ready and the gauges of GET /metrics, so that neither a scrape nor
 * a readiness probe ever costs an SQS call of its own.
 *
 * @example const monitor = createBacklogMonitor(deps); const { stop } = monitor.start()
 */
export const createBacklogMonitor = (
  deps: BacklogDeps,
  { maxAgeMs = BACKLOG_MAX_AGE_MS, now = () => new Date() } = {},
): BacklogMonitor => {
  let last: { at: number; backlog: Backlog } | undefined
  let reading: Promise<Backlog> | undefined
  const current = () => {
    if (last && Date.now() - last.at < maxAgeMs) return Promise.resolve(last.backlog)
    reading ??= readBacklog(deps, now())
      .then((backlog) => {
        last = { at: Date.now(), backlog }
        setGauges(backlog)
        return backlog
      })
      .finally(() => {
        reading = undefined
      })
    return reading
  }
  return {
    current,
    start: () => {
      const refresh = () =>
        current().catch((error) => deps.logger.warn('could not read the backlog', { err: error }))
      refresh()
      const timer = setInterval(refresh, maxAgeMs)
      timer.unref()
      return { stop: () => clearInterval(timer) }
    },
  }
}
