// The search section: a chat of CHAT_DEPTH messages among SEARCH_DOCS indexed, searched at 10
// connections through the API, next to the engine alone answering the very request the API sends.
import { loadConfig } from '../../lib/config.ts'
import { createDeps } from '../../lib/deps.ts'
import { silentLogger } from '../../lib/logger.ts'
import type { MessageDocument } from '../../lib/search/document.ts'
import { SEARCH_FIELDS, searchBody } from '../../lib/search/query.ts'
import { type BenchRun, CHAT_DEPTH, interleaved, json, SEARCH_DOCS, show, sleep } from '../harness.ts'
import { benchBody } from '../persistence.ts'
import { results } from '../report.ts'

export const benchSearch = async ({ env, server, reader }: BenchRun) => {
  console.log(
    `\n# Search: a chat of ${CHAT_DEPTH.toLocaleString('en')} messages among ${SEARCH_DOCS.toLocaleString('en')} indexed, 10 connections`,
  )
  const config = loadConfig(env)
  const deps = createDeps(config, { logger: silentLogger })
  await deps.search.ensureIndex()
  const started = performance.now()
  const now = new Date()
  const BATCH = 500
  const toIndex = async (from: number, to: number) => {
    const documents: MessageDocument[] = []
    for (let i = from; i < to; i++) {
      const inChat = i < CHAT_DEPTH
      const chatId = inChat ? reader.chatId : 1_000_000_000 + (i % 900)
      documents.push({
        applicationId: inChat ? reader.applicationId : 1,
        chatId,
        chatNumber: 1,
        number: i + 1,
        body: benchBody(i),
        version: 1,
        createdAt: now,
        updatedAt: now,
      })
    }
    // A busy engine times some bulk requests out: write what failed again.
    let pending = documents
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === 5) throw new Error(`${pending.length} documents failed to index`)
      if (attempt > 0) await sleep(1_000 * attempt)
      pending = (await deps.search.bulkIndex(pending)).failed
    }
  }
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < SEARCH_DOCS) {
        const from = next
        next = Math.min(SEARCH_DOCS, next + BATCH)
        await toIndex(from, next)
      }
    }),
  )
  await deps.search.client.indices.refresh({ index: deps.search.alias }, { requestTimeout: 120_000 })
  console.log(`indexed ${SEARCH_DOCS} documents in ${Math.round((performance.now() - started) / 1000)} s`)
  results.search_docs = SEARCH_DOCS
  results.search = []
  for (const q of ['item 423', 'fox', 'Ça va']) {
    const url = `${server}/applications/${reader.token}/chats/1/messages/search?q=${encodeURIComponent(q)}`
    const { total } = (await json(url)) as { total: number }
    // The baseline: the engine alone answering the very request the API sends it.
    const [engineFigures, figures] = await interleaved([
      {
        url: `${env.ELASTICSEARCH_URL}/${deps.search.alias}/_search?routing=${reader.chatId}&filter_path=${SEARCH_FIELDS.join(',')}`,
        method: 'POST',
        body: JSON.stringify(searchBody(reader.chatId, { q, limit: 20, offset: 0 })),
        connections: 10,
      },
      { url, connections: 10 },
    ])
    show(`engine alone: q="${q}", 10 connections`, engineFigures!)
    show(`search q="${q}" (${total} hits), 10 connections`, figures!)
    results.search.push({ query: q, hits: total, engine: engineFigures!, figures: figures! })
  }
  await deps.close()
}
