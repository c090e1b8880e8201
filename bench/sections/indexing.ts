// The indexing section: the bulk ceiling with each indexed body field left out, and with mapping
// v1, so that each field's share of the ceiling shows.

import { INDEX_MAPPINGS } from '../../lib/search/index-settings.ts'
import { type BenchRun, QUICK, round2, runChild } from '../harness.ts'
import { results } from '../report.ts'

export const benchIndexing = async ({ env, unique }: BenchRun) => {
  console.log('\n# Indexing: what each indexed body field costs (bulk ceiling without it)')
  const docs = QUICK ? 10_000 : 20_000
  const body = INDEX_MAPPINGS.properties!.body as { fields?: Record<string, unknown> }
  // The project's mapping and v1's alternate twice: the difference is the change's, not the noise's.
  const variants: Array<[string, string[]]> = [
    ['all (the project mapping)', []],
    ['mapping v1 (body.short, 1–2 grams, for body.chars)', ['v1']],
    ['all (the project mapping)', []],
    ['mapping v1 (body.short, 1–2 grams, for body.chars)', ['v1']],
    ...Object.keys(body.fields ?? {}).map((field): [string, string[]] => [`without body.${field}`, [field]]),
    ['without body (words)', ['words']],
    ['body not indexed at all', ['words', ...Object.keys(body.fields ?? {})]],
  ]
  const rates = new Map<string, number[]>()
  for (const [fields, drop] of variants) {
    const figure = await runChild<{ per_s: number }>(
      'bench/persistence.ts',
      ['index', JSON.stringify({ docs, drop, name: `bench-fields-${unique}` })],
      env,
    )
    rates.set(fields, [...(rates.get(fields) ?? []), figure.per_s])
    console.log(`${fields.padEnd(52)} ${figure.per_s} docs/s`)
  }
  const mean = (values: number[]) => Math.round(values.reduce((sum, v) => sum + v, 0) / values.length)
  const full = mean(rates.get(variants[0]![0])!)
  const indexing = [...rates].map(([fields, values]) => ({
    fields,
    docs_per_s: mean(values),
    share_of_full: round2(full / mean(values)),
  }))
  results.indexing = indexing
}
