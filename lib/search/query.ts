import type { estypes } from '@elastic/elasticsearch'
import type { SearchQuery } from '../api/schemas.ts'

/** One hit as the API returns it. */
export interface SearchHit {
  number: number
  body: string
  created_at: string
  updated_at: string
  highlight: string
}

export interface SearchPage {
  data: SearchHit[]
  total: number
}

/** What a bulk write did: documents that landed (or were already newer) and those to retry. */

// Lucene's SimpleHTMLEncoder, which `encoder: html` applies to highlights; used when a hit comes
// back without one, so that `highlight` is always escaped the same way.
const HTML_ESCAPES: Record<string, string> = {
  '"': '&quot;',
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&#x27;',
  '/': '&#x2F;',
}
export const escapeHtml = (text: string) => text.replace(/["&<>'/]/g, (char) => HTML_ESCAPES[char]!)

/** The body query for `q` (already trimmed). Plain text only: the engine never parses q. */
export const bodyQuery = (q: string) => {
  // The n-gram tokenizers count code points, so the choice of subfield must too.
  const length = [...q].length
  const substring =
    length >= 3
      ? { match_phrase: { 'body.ngram': { query: q } } }
      : {
          bool: {
            should: [
              { match_phrase: { 'body.chars': { query: q } } },
              // Mapping v1's field, for an index that `npm run reindex` has not replaced yet.
              { match: { 'body.short': { query: q } } },
            ],
          },
        }
  return {
    bool: {
      must: [substring],
      // Ranks whole-word matches above matches inside words; never decides whether a message matches.
      should: [{ match_phrase: { body: { query: q } } }],
    },
  }
}

/**
 * What a search answer keeps (`filter_path`): the total and each hit's source and highlight, not
 * the shards' report nor each hit's index, id, score, routing and sort values (8.7 KB for 20 hits,
 * 6.4 KB without). An empty page then has no `hits.hits` at all.
 */
export const SEARCH_FIELDS = ['hits.total.value', 'hits.hits._source', 'hits.hits.highlight']

/**
 * The body of the search request for one chat's messages (sent with `routing` = the chat id): its
 * matches of `q`, by relevance then newest first, with the exact total and the highlighted body.
 */
export const searchBody = (chatId: number, { q, limit, offset }: SearchQuery): estypes.SearchRequest => ({
  query: { bool: { filter: [{ term: { chat_id: chatId } }], must: [bodyQuery(q)] } },
  sort: [{ _score: { order: 'desc' } }, { created_at: { order: 'desc' } }, { number: { order: 'desc' } }],
  from: offset,
  size: limit,
  track_total_hits: true,
  _source: ['number', 'body', 'created_at', 'updated_at'],
  highlight: {
    encoder: 'html',
    pre_tags: ['<em>'],
    post_tags: ['</em>'],
    // The highlighted field's text is the parent's _source value: the whole body, escaped.
    fields: {
      'body.ngram': { type: 'unified', number_of_fragments: 0 },
      'body.chars': { type: 'unified', number_of_fragments: 0 },
      'body.short': { type: 'unified', number_of_fragments: 0 },
    },
  },
})
