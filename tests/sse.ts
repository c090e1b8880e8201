/** One Server-Sent Event as a client sees it; comments (`: ping`) come as event 'comment'. */
export interface SseEvent {
  id?: string
  event: string
  data: string
  /** performance.now() when it was parsed. */
  at: number
}

export interface SseStream {
  status: number
  headers: Headers
  events: SseEvent[]
  /** Resolves when `count` events match, or throws after `timeoutMs`. */
  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  close(): Promise<void>
}

const parseBlock = (block: string): SseEvent | undefined => {
  const event: SseEvent = { event: 'message', data: '', at: performance.now() }
  const data: string[] = []
  let isComment = true
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) {
      data.push(line.slice(1).trim())
      continue
    }
    isComment = false
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'id') event.id = value
    else if (field === 'event') event.event = value
    else if (field === 'data') data.push(value)
    else if (field === 'retry') return undefined
  }
  if (isComment) return { event: 'comment', data: data.join('\n'), at: event.at }
  event.data = data.join('\n')
  return event
}

/** Reads an event-stream response as it arrives, keeping every event. */
export const readSse = (res: Response, onEvent?: (event: SseEvent) => void): SseStream => {
  const events: SseEvent[] = []
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  const waiters = new Set<() => void>()
  let buffer = ''
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += value
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = parseBlock(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
          if (!event) continue
          events.push(event)
          onEvent?.(event)
        }
        for (const waiter of waiters) waiter()
      }
    } catch {
      // closed by us
    } finally {
      for (const waiter of waiters) waiter()
    }
  })()
  let isEnded = false
  void ended.then(() => {
    isEnded = true
  })
  return {
    status: res.status,
    headers: res.headers,
    events,
    ended,
    waitFor: async (predicate, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs
      while (!predicate(events)) {
        if (isEnded) throw new Error(`stream ended; got ${JSON.stringify(events.map((e) => e.event))}`)
        if (Date.now() > deadline) {
          throw new Error(`not seen in ${timeoutMs} ms; got ${events.length} events`)
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            waiters.delete(done)
            clearTimeout(timer)
            resolve()
          }
          const timer = setTimeout(done, 100)
          waiters.add(done)
        })
      }
      return events
    },
    close: async () => {
      await reader.cancel().catch(() => undefined)
      await ended
    },
  }
}

/** The `message` events' data, parsed. */
export const messagesOf = (events: SseEvent[]) =>
  events
    .filter((event) => event.event === 'message')
    .map((event) => JSON.parse(event.data) as { number: number; body: string; updated_at: string })
