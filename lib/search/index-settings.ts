import type { estypes } from '@elastic/elasticsearch'

// Design of message search (see also the README's dated entry):
//
// - Substring search is an exact-phrase query on a trigram subfield (`body.ngram`: ngram 3–3,
//   token_chars [] so that spaces and punctuation count, then lowercase and asciifolding). Every
//   gram sits at the position of its first character, so a slop-0 phrase is an exact substring test
//   on the folded text, for queries of 3+ code points. Queries of 1–2 code points have no trigram:
//   they are the same exact phrase on `body.chars` (ngram 1–1, same filters: one gram per code
//   point, at its position), so a highlight marks exactly the matched characters. The engine
//   analyzes both sides, so case and accent folding can never disagree between JS and Lucene.
// - Mapping version 2 replaced v1's `body.short` (ngram 1–2 searched as one folded keyword: two
//   grams per character, the most expensive field to index) with `body.chars` (one gram per
//   character). Until `npm run reindex` moves the alias, short queries ask both fields: each index
//   has one of them, and a query on a field an index lacks matches nothing there.
// - The query is plain text: it only ever reaches `match_phrase`/`match`, never query_string.
// - One document per message, `_id` = `${chatId}:${number}` (internal ids stay in the index; the
//   API returns number/body/timestamps only), routed by chat so a chat's search hits one shard.
// - Writes use `version_type: external_gte` with the row's body_version: re-indexing a row is
//   idempotent, and a stale write gets a 409 (counted as done) instead of overwriting a newer body.
// - The alias SEARCH_INDEX points at a versioned index: a mapping change ships by `npm run reindex`,
//   which fills a new index from MySQL and swaps the alias atomically.
// - Failed writes go to the outbox, which is a column of the row: `unindexed_version`, the
//   body_version that failed (0 = indexed), with an index to scan the non-zero ones. The
//   retry-indexing job re-reads those rows and indexes them until they land; MySQL persistence never
//   waits for the engine to come back, and no Redis loss or outage length changes what is kept.

/** Bump when the mapping or analysis changes; `npm run reindex` moves the alias to the new index. */
export const MAPPING_VERSION = 2

/** The first index behind an alias. Deterministic, so servers racing to create it collide safely. */
export const initialIndexName = (alias: string) => `${alias}_v${MAPPING_VERSION}`

const FOLD = ['lowercase', 'asciifolding']

/** Index settings: explicit, so that behaviour does not depend on cluster defaults. */
export const INDEX_SETTINGS: estypes.IndicesIndexSettings = {
  // Documents are small and routed by chat; one shard keeps relevance statistics exact. More
  // shards later is a reindex.
  number_of_shards: 1,
  // No replica on a single node (green health), one as soon as a second node joins.
  auto_expand_replicas: '0-1',
  // Explicit, so that an idle shard keeps refreshing (ES skips refreshes of search-idle shards
  // unless the interval is set). Half of ES's default second: a message waits half as long for
  // the refresh that makes it searchable (202 → found by search, p50: 223–378 ms less in
  // BENCHMARKS.md item 37), while indexing throughput moved less than between runs. An index
  // created with another interval keeps it until reindexed (`npm run reindex`) or set by hand.
  refresh_interval: '500ms',
  // body.chars is ngram 1–1 and body.ngram 3–3: max − min is 0 for both.
  max_ngram_diff: 0,
  // The contract allows offset 10,000 with limit 100.
  max_result_window: 10_100,
  analysis: {
    tokenizer: {
      trigram: { type: 'ngram', min_gram: 3, max_gram: 3, token_chars: [] },
      unigram: { type: 'ngram', min_gram: 1, max_gram: 1, token_chars: [] },
    },
    analyzer: {
      body_trigram: { type: 'custom', tokenizer: 'trigram', filter: FOLD },
      body_unigram: { type: 'custom', tokenizer: 'unigram', filter: FOLD },
      body_words: { type: 'custom', tokenizer: 'standard', filter: FOLD },
    },
  },
}

/** Strict mapping: a document with an unknown field is rejected rather than widening the index. */
export const INDEX_MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _routing: { required: true },
  _meta: { mapping_version: MAPPING_VERSION },
  properties: {
    application_id: { type: 'long' },
    chat_id: { type: 'long' },
    number: { type: 'integer' },
    body: {
      // Words, for a relevance boost of whole-word matches; the substring fields do the matching.
      type: 'text',
      analyzer: 'body_words',
      fields: {
        ngram: { type: 'text', analyzer: 'body_trigram' },
        chars: { type: 'text', analyzer: 'body_unigram' },
      },
    },
    created_at: { type: 'date' },
    updated_at: { type: 'date', index: false },
    version: { type: 'long', index: false },
  },
}
