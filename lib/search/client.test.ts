import { Client, type estypes } from '@elastic/elasticsearch'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../tests/harness.ts'
import { UnavailableError } from '../errors.ts'
import { silentLogger } from '../logger.ts'
import { createSearch, type Search } from './client.ts'
import { documentId, type MessageDocument } from './document.ts'
import { INDEX_MAPPINGS, initialIndexName } from './index-settings.ts'

const DEAD_ENGINE = 'http://127.0.0.1:1'

let created = 0
const aDocument = (overrides: Partial<MessageDocument> = {}): MessageDocument => {
  created++
  return {
    applicationId: 1,
    chatId: 1,
    chatNumber: 1,
    number: created,
    body: `message ${created}`,
    version: 1_000,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, created)),
    updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, created)),
    ...overrides,
  }
}

describe('createSearch', () => {
  const config = testConfig()
  let search: Search
  const searchIn = (chatId: number, q: string, limit = 20, offset = 0) =>
    search.search(chatId, { q, limit, offset })
  const numbersFor = async (chatId: number, q: string) =>
    (await searchIn(chatId, q)).data.map((hit) => hit.number)

  beforeAll(async () => {
    search = createSearch(config, { logger: silentLogger })
    await search.ensureIndex()
  })
  afterAll(async () => {
    // By name: Elasticsearch refuses wildcard deletes (action.destructive_requires_name).
    await search.client.indices.delete({ index: initialIndexName(config.SEARCH_INDEX) })
    await search.close()
  })

  it('has at most bulkConcurrency bulk requests in flight, and indexes every batch', async () => {
    const client = new Client({ node: config.ELASTICSEARCH_URL })
    let inFlight = 0
    let most = 0
    const bulk = client.bulk.bind(client)
    client.bulk = (async (...args: Parameters<typeof bulk>) => {
      most = Math.max(most, ++inFlight)
      try {
        return await bulk(...args)
      } finally {
        inFlight--
      }
    }) as typeof client.bulk
    const limited = createSearch(config, { logger: silentLogger }, { client, bulkConcurrency: 2 })
    const batches = Array.from({ length: 8 }, (_, k) =>
      Array.from({ length: 5 }, (_, i) => aDocument({ chatId: 70, number: 1 + k * 5 + i })),
    )

    const outcomes = await Promise.all(batches.map((batch) => limited.bulkIndex(batch)))

    expect(most).toBe(2)
    expect(outcomes.reduce((sum, outcome) => sum + outcome.indexed, 0)).toBe(40)
    await client.close()
  })

  describe('after a mapping upgrade, before `npm run reindex`', () => {
    // Mapping v1's analysis of the body, as servers of that version created it.
    const FOLD = ['lowercase', 'asciifolding']
    const v1Settings: estypes.IndicesIndexSettings = {
      number_of_shards: 1,
      max_ngram_diff: 1,
      analysis: {
        tokenizer: {
          trigram: { type: 'ngram', min_gram: 3, max_gram: 3, token_chars: [] },
          unigram_bigram: { type: 'ngram', min_gram: 1, max_gram: 2, token_chars: [] },
        },
        analyzer: {
          body_trigram: { type: 'custom', tokenizer: 'trigram', filter: FOLD },
          body_short: { type: 'custom', tokenizer: 'unigram_bigram', filter: FOLD },
          folded_keyword: { type: 'custom', tokenizer: 'keyword', filter: FOLD },
          body_words: { type: 'custom', tokenizer: 'standard', filter: FOLD },
        },
      },
    }
    const v1Mappings: estypes.MappingTypeMapping = {
      ...INDEX_MAPPINGS,
      _meta: { mapping_version: 1 },
      properties: {
        ...INDEX_MAPPINGS.properties,
        body: {
          type: 'text' as const,
          analyzer: 'body_words',
          fields: {
            ngram: { type: 'text' as const, analyzer: 'body_trigram' },
            short: { type: 'text' as const, analyzer: 'body_short', search_analyzer: 'folded_keyword' },
          },
        },
      },
    }

    it('still finds and highlights 1–2 character queries in an index of mapping v1', async () => {
      const alias = `${config.SEARCH_INDEX}-v1`
      const old = createSearch({ ...config, SEARCH_INDEX: alias }, { logger: silentLogger })
      await old.client.indices.create({
        index: `${alias}_v1`,
        settings: v1Settings,
        mappings: v1Mappings,
        aliases: { [alias]: { is_write_index: true } },
      })
      try {
        await old.bulkIndex([aDocument({ chatId: 40, number: 1, body: 'Crème brûlée' })], { refresh: true })

        const [one] = (await old.search(40, { q: 'û', limit: 20, offset: 0 })).data
        const [two] = (await old.search(40, { q: 'EM', limit: 20, offset: 0 })).data
        const [three] = (await old.search(40, { q: 'rul', limit: 20, offset: 0 })).data

        expect(one?.highlight).toBe('Crème br<em>û</em>lée')
        expect(two?.highlight).toBe('Cr<em>èm</em>e brûlée')
        expect(three?.highlight).toBe('Crème b<em>rûl</em>ée')
      } finally {
        await old.client.indices.delete({ index: `${alias}_v1` })
        await old.close()
      }
    })
  })

  describe('ensureIndex', () => {
    it('creates one versioned index behind the alias, however many servers race to create it', async () => {
      const alias = `${config.SEARCH_INDEX}-race`
      const racers = Array.from({ length: 5 }, () =>
        createSearch({ ...config, SEARCH_INDEX: alias }, { logger: silentLogger }),
      )

      const results = await Promise.all(racers.map((racer) => racer.ensureIndex()))
      const again = await racers[0]!.ensureIndex()

      expect(results.filter((result) => result.created)).toHaveLength(1)
      expect(again).toEqual({ created: false })
      expect(Object.keys(await search.client.indices.getAlias({ name: alias }))).toEqual([
        initialIndexName(alias),
      ])
      await search.client.indices.delete({ index: initialIndexName(alias) })
      await Promise.all(racers.map((racer) => racer.close()))
    })

    it('creates an index that refreshes every 500 ms, twice as often as the engine would', async () => {
      const settings = await search.client.indices.getSettings({ index: search.alias })

      expect(Object.values(settings).map((index) => index.settings?.index?.refresh_interval)).toEqual([
        '500ms',
      ])
    })

    it('creates a strict mapping that rejects unknown fields', async () => {
      const attempt = search.client.index({
        index: search.alias,
        id: 'x',
        routing: '1',
        document: { chat_id: 1, number: 1, body: 'x', unknown_field: true },
      })

      await expect(attempt).rejects.toMatchObject({ statusCode: 400 })
    })
  })

  describe('substring search', () => {
    const chat = 10
    const bodies: Record<number, string> = {
      1: 'The Quick Brown Fox',
      2: 'Crème brûlée à la CAFÉ',
      3: 'naïve façade',
      4: 'x',
      5: 'hello world',
      6: 'Ωmega ß',
    }

    beforeAll(async () => {
      await search.bulkIndex(
        Object.entries(bodies).map(([number, body]) =>
          aDocument({ chatId: chat, number: Number(number), body }),
        ),
        { refresh: true },
      )
      // The same texts in another chat of another application: never a hit.
      await search.bulkIndex(
        Object.entries(bodies).map(([number, body]) =>
          aDocument({ applicationId: 2, chatId: chat + 1, chatNumber: 1, number: Number(number), body }),
        ),
        { refresh: true },
      )
    })

    it.each([
      ['in the middle of a word', 'uic', [1]],
      ['across a space', 'k br', [1]],
      ['across several words', 'ick brown f', [1]],
      ['with different case', 'QUICK', [1]],
      ['without the accents of the body', 'creme brulee', [2]],
      ['with accents the body lacks', 'cafe', [2]],
      ['with accents and case the body lacks', 'NAÏVE FAÇ', [3]],
      ['of one character', 'x', [1, 4]],
      ['of one accented character', 'ç', [1, 2, 3]],
      ['of two characters', 'lo', [5]],
      ['of two characters across a space', 'o w', [5]],
      ['of two characters with case and accents', 'Èm', [2]],
      ['of a non-Latin letter', 'ω', [6]],
    ])('finds a substring %s', async (_case, q, expected) => {
      const numbers = await numbersFor(chat, q)

      expect(numbers.sort()).toEqual(expected)
    })

    it.each([
      ['a longer text than any body', 'the quick brown fox jumps'],
      ['words out of order', 'fox quick'],
      ['a doubled space', 'hello  world'],
      ['a text absent from every body', 'zzz'],
    ])('finds nothing for %s', async (_case, q) => {
      expect(await numbersFor(chat, q)).toEqual([])
    })

    it('never returns messages of another chat', async () => {
      const page = await searchIn(chat, 'e')

      expect(page.total).toBe(5)
      expect(page.data.map((hit) => hit.number).sort()).toEqual([1, 2, 3, 5, 6])
      expect(await numbersFor(999, 'e')).toEqual([])
    })
  })

  describe('query text', () => {
    const chat = 20
    const SPECIAL = 'a*b?c "d" (e) f\\g h/i j:k AND OR NOT ~1 ^2 [l] {m} +n -o !p && || <q>'

    beforeAll(async () => {
      await search.bulkIndex(
        [
          aDocument({ chatId: chat, number: 1, body: SPECIAL }),
          aDocument({ chatId: chat, number: 2, body: 'plain words and other words' }),
        ],
        { refresh: true },
      )
    })

    it.each([
      '*',
      '?',
      '"',
      '"d"',
      '(e)',
      '\\',
      'f\\g',
      '/',
      'h/i',
      'j:k',
      'AND OR NOT',
      '~1',
      '^2',
      '[l]',
      '{m}',
      '+n',
      '-o',
      '!p',
      '&&',
      '||',
      '<q>',
      'a*b?c',
    ])('matches %s literally', async (q) => {
      expect(await numbersFor(chat, q)).toEqual([1])
    })

    it.each([
      '*:*',
      '" OR 1=1',
      'body:*',
      '(',
      ')',
      '[* TO *]',
      '{',
      '\\"',
      '/.*/',
      'a~',
      '\u0000',
      '𝒜',
      '😀😀',
      '%',
      '<script>',
      'x'.repeat(256),
      'é'.repeat(256),
    ])('never errors and never matches everything for %j', async (q) => {
      const page = await searchIn(chat, q)

      expect(page.data.every((hit) => hit.body.toLowerCase().includes(q.toLowerCase()))).toBe(true)
    })
  })

  describe('hits', () => {
    const chat = 30

    it('come with the whole body HTML-escaped and each match wrapped in <em>', async () => {
      await search.bulkIndex(
        [aDocument({ chatId: chat, number: 1, body: 'Use <b>bold</b> & "quotes" for Bold' })],
        { refresh: true },
      )

      const [hit] = (await searchIn(chat, 'bold')).data

      expect(hit).toMatchObject({ number: 1, body: 'Use <b>bold</b> & "quotes" for Bold' })
      expect(hit!.highlight).toBe(
        'Use &lt;b&gt;<em>bold</em>&lt;&#x2F;b&gt; &amp; &quot;quotes&quot; for <em>Bold</em>',
      )
    })

    it('highlight one- and two-character matches too', async () => {
      const [hit] = (await searchIn(chat, 'b')).data
      const [two] = (await searchIn(chat, '&')).data

      expect(hit!.highlight).toContain('<em>b</em>old')
      expect(two!.highlight).toContain('<em>&amp;</em>')
    })

    it('are ordered by relevance, then newest first', async () => {
      const chatId = 31
      const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second))
      await search.bulkIndex(
        [
          aDocument({
            chatId,
            number: 1,
            body: 'one cat in a long sentence about many other things',
            createdAt: at(1),
          }),
          aDocument({ chatId, number: 2, body: 'cat cat cat', createdAt: at(2) }),
          aDocument({ chatId, number: 3, body: 'cat', createdAt: at(3) }),
          aDocument({ chatId, number: 4, body: 'cat', createdAt: at(4) }),
        ],
        { refresh: true },
      )

      const numbers = await numbersFor(chatId, 'cat')

      // 3 and 4 score the same: the newer comes first. The long body scores lowest.
      expect(numbers.indexOf(4)).toBe(numbers.indexOf(3) - 1)
      expect(numbers.at(-1)).toBe(1)
    })

    it('are paged by limit and offset, with the total of every hit', async () => {
      const chatId = 32
      await search.bulkIndex(
        Array.from({ length: 7 }, (_, i) => aDocument({ chatId, number: i + 1, body: 'same text' })),
        { refresh: true },
      )

      const first = await searchIn(chatId, 'same', 3, 0)
      const last = await searchIn(chatId, 'same', 3, 6)
      const past = await searchIn(chatId, 'same', 100, 10_000)

      expect(first.total).toBe(7)
      expect(first.data.map((hit) => hit.number)).toEqual([7, 6, 5])
      expect(last.data.map((hit) => hit.number)).toEqual([1])
      expect(past).toEqual({ data: [], total: 7 })
    })
  })

  describe('bulkIndex', () => {
    const chat = 40

    it('replaces a body with a newer version, and re-indexing a version is idempotent', async () => {
      const first = aDocument({ chatId: chat, number: 1, body: 'old text', version: 100 })
      await search.bulkIndex([first], { refresh: true })

      const outcome = await search.bulkIndex([{ ...first, body: 'new text', version: 200 }], {
        refresh: true,
      })
      const again = await search.bulkIndex([{ ...first, body: 'new text', version: 200 }], { refresh: true })

      expect(outcome).toMatchObject({ indexed: 1, stale: 0, failed: [] })
      expect(again).toMatchObject({ indexed: 1, stale: 0, failed: [] })
      expect(await numbersFor(chat, 'new text')).toEqual([1])
      expect(await numbersFor(chat, 'old text')).toEqual([])
      expect(
        (await search.client.count({ index: search.alias, query: { term: { chat_id: chat } } })).count,
      ).toBe(1)
    })

    it('never lets a stale write overwrite a newer body', async () => {
      const newer = aDocument({ chatId: chat, number: 2, body: 'newest body', version: 300 })
      await search.bulkIndex([newer], { refresh: true })

      const outcome = await search.bulkIndex([{ ...newer, body: 'stale body', version: 299 }], {
        refresh: true,
      })

      expect(outcome).toMatchObject({ indexed: 0, stale: 1, failed: [] })
      expect(await numbersFor(chat, 'stale')).toEqual([])
      expect(await numbersFor(chat, 'newest')).toEqual([2])
    })

    it('keys documents by chat and number', async () => {
      const document = aDocument({ chatId: chat, number: 3 })
      await search.bulkIndex([document], { refresh: true })

      const stored = await search.client.get({
        index: search.alias,
        id: documentId(chat, 3),
        routing: String(chat),
      })

      expect(stored._source).toMatchObject({ chat_id: chat, number: 3, body: document.body })
    })
  })

  describe('with the engine down', () => {
    let dead: Search

    beforeAll(() => {
      dead = createSearch({ ...config, ELASTICSEARCH_URL: DEAD_ENGINE }, { logger: silentLogger })
    })
    afterAll(() => dead.close())

    it('search answers UnavailableError within a few seconds', async () => {
      const started = performance.now()

      const error = await dead.search(1, { q: 'text', limit: 20, offset: 0 }).catch((e: unknown) => e)

      expect(error).toBeInstanceOf(UnavailableError)
      expect(performance.now() - started).toBeLessThan(3_000)
    })

    it('ping rejects', async () => {
      await expect(dead.ping()).rejects.toThrow()
      await expect(search.ping()).resolves.toBeUndefined()
    })
  })
})
