// What a run of `npm run bench` found: the figures every section adds to `results`, each
// comparison with its target, and the table between the markers in BENCHMARKS.md.
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { CHAT_DEPTH, CONNECTIONS, DURATION_S, ROUNDS, round2 } from './harness.ts'
import type { LiveBenchFigures } from './live.ts'
import type { Figures } from './load.ts'
import type { benchReconcile } from './reconcile.ts'

/** A persistence run (bench/persistence.ts), with what the processes around it spent. */
export interface PersistenceFigures {
  count: number
  ms: number
  per_s: number
  /** The drain's own process, µs of CPU a job. */
  cpu_us?: number
  /** The engine, MariaDB, the SQS emulator and Redis during the drain, µs of CPU a job. */
  others_cpu_us?: Record<string, number>
  /** The engine during the bulk ceiling, µs of CPU a document. */
  engine_cpu_us?: number
  /** The bulk ceiling measured before and after the drain; `per_s` is their mean. */
  runs_per_s?: number[]
}

interface Comparison {
  name: string
  baseline: Figures
  project: Figures
  ratio: number
  target: string
  met: boolean
}

export const results: {
  date: string
  machine: Record<string, unknown>
  connections: number
  duration_s: number
  comparisons: Comparison[]
  persistence?: Record<string, PersistenceFigures>
  indexing?: Array<{ fields: string; docs_per_s: number; share_of_full: number }>
  lag?: Record<string, number>
  /** The lag at half of what the server with its workers takes and persists. */
  lag_sustained?: Record<string, number>
  search?: Array<{ query: string; hits: number; engine: Figures; figures: Figures }>
  search_docs?: number
  failures?: string[]
  live?: LiveBenchFigures
  reconcile?: Awaited<ReturnType<typeof benchReconcile>>
} = {
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    load_average_at_start: os.loadavg().map(round2),
  },
  connections: CONNECTIONS,
  duration_s: DURATION_S,
  comparisons: [],
}

export const compare = (
  name: string,
  baseline: Figures,
  project: Figures,
  { minRatio, maxP99Factor }: { minRatio: number; maxP99Factor?: number },
) => {
  const ratio = round2(project.requests_per_s / baseline.requests_per_s)
  const p99Ok = maxP99Factor === undefined || project.p99_ms <= maxP99Factor * baseline.p99_ms
  const comparison: Comparison = {
    name,
    baseline,
    project,
    ratio,
    target: `≥ ${minRatio}×${maxP99Factor ? `, p99 ≤ ${maxP99Factor}× baseline's` : ''}`,
    met: ratio >= minRatio && p99Ok && project.errors + project.non_2xx === 0,
  }
  results.comparisons.push(comparison)
  console.log(`  → ratio ${ratio} (target ${comparison.target}): ${comparison.met ? 'met' : 'MISSED'}`)
  return comparison
}

export const writeBenchmarksMd = () => {
  const path = new URL('../BENCHMARKS.md', import.meta.url)
  const r = results
  const cell = (f: Figures) => `${f.requests_per_s} req/s, p99 ${f.p99_ms} ms`
  const lines = [
    '<!-- bench:start (written by `npm run bench`; edit outside these markers) -->',
    `Run of ${r.date} on ${r.machine.cpus} cores (${r.machine.model}), ${r.machine.memory_gib} GiB, Node ${r.machine.node}, load average at start ${(r.machine.load_average_at_start as number[]).join(' ')}; ${r.connections} connections; each load ${r.duration_s} s in ${ROUNDS} rounds alternating with its baseline (req/s: mean; p99: median of the rounds).`,
    '',
    '| path | bare baseline | this project | ratio | target | met |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...r.comparisons.map(
      (c) =>
        `| ${c.name} | ${cell(c.baseline)} | ${cell(c.project)} | ${c.ratio} | ${c.target} | ${c.met ? 'yes' : '**no**'} |`,
    ),
  ]
  const p = r.persistence
  if (p?.consumers) {
    const binding = Math.min(p.upsert!.per_s, p.bulk_index!.per_s)
    lines.push(
      `| persistence (consumers: MySQL + search) | raw upsert ${p.upsert!.per_s} rows/s; bulk indexing ${p.bulk_index!.per_s} docs/s${p.bulk_index!.runs_per_s ? ` (the mean of ${p.bulk_index!.runs_per_s.join(' before and ')} after the drain)` : ''} | ${p.consumers.per_s} jobs/s (over ${p.consumers.count} jobs, after a tenth of the backlog warms the consumers) | ${round2(p.consumers.per_s / binding)} of ${binding === p.bulk_index!.per_s ? 'bulk indexing' : 'the upserts'} | ≥ 0.8× the binding ceiling | ${p.consumers.per_s >= 0.8 * binding ? 'yes' : '**no**'} |`,
    )
  }
  const lagRow = (lag: Record<string, number>, what: string) =>
    `| lag at ${lag.rate_per_s} creates/s offered (${what}; ${lag.achieved_per_s} taken, the server running its consumers too), ${lag.probes} probes | – | 202 → readable p50 ${lag.read_p50_ms} ms, p99 ${lag.read_p99_ms} ms; 202 → searchable p50 ${lag.search_p50_ms} ms, p99 ${lag.search_p99_ms} ms | – | p99 ≤ 1,000 ms; ≤ 2,500 ms | ${lag.read_p99_ms! <= 1_000 && lag.search_p99_ms! <= 2_500 ? 'yes' : '**no**'} |`
  if (r.lag) lines.push(lagRow(r.lag, 'half the max, workers off'))
  if (r.lag_sustained)
    lines.push(
      lagRow(
        r.lag_sustained,
        `half the ${r.lag_sustained.sustained_per_s}/s the server with its workers took and persisted`,
      ),
    )
  for (const s of r.search ?? []) {
    lines.push(
      `| search q="${s.query}" (${s.hits} hits), chat of ${CHAT_DEPTH.toLocaleString('en')} among ${r.search_docs!.toLocaleString('en')} docs, 10 connections | the engine alone, same request: ${cell(s.engine)} | ${cell(s.figures)} | ${round2(s.figures.requests_per_s / s.engine.requests_per_s)} | p99 ≤ 50 ms | ${s.figures.p99_ms <= 50 ? 'yes' : '**no**'} |`,
    )
  }
  if (r.live) {
    const l = r.live
    const isMet = l.from_commit_p99_ms <= 250 && l.js_per_idle_stream_kib <= 20
    lines.push(
      `| live: ${l.subscribers.toLocaleString('en')} subscribers over ${l.chats} chats, ${l.messages_per_s} messages/s for ${l.duration_s} s | – | ${l.deliveries}/${l.deliveries_expected} deliveries; commit → received p50 ${l.from_commit_p50_ms} ms, p99 ${l.from_commit_p99_ms} ms (the server's append → write p99 ≤ ${l.server_write_p99_le_ms} ms); idle stream ${l.js_per_idle_stream_kib} KiB of JS heap, ${l.rss_per_idle_stream_kib} KiB of RSS | – | p99 ≤ 250 ms; ≤ 20 KiB | ${isMet ? 'yes' : '**no**'} |`,
    )
  }
  if (r.indexing) {
    lines.push('', '| indexed body fields | bulk docs/s | full mapping / this |', '| --- | ---: | ---: |')
    for (const row of r.indexing) lines.push(`| ${row.fields} | ${row.docs_per_s} | ${row.share_of_full} |`)
  }
  if (r.reconcile) {
    lines.push(
      '',
      `Reconcile (10,000 chats, 1,000,000 messages): full sweep, every count wrong, ${r.reconcile.full_ms} ms; incremental after 1,000 new messages over 100 chats, ${r.reconcile.incremental_ms} ms.`,
    )
  }
  for (const failure of r.failures ?? []) lines.push('', `Failed in this run: ${failure}.`)
  lines.push('<!-- bench:end -->')
  const current = readFileSync(path, 'utf8')
  writeFileSync(path, current.replace(/<!-- bench:start[\s\S]*?<!-- bench:end -->/, lines.join('\n')))
}
