// The persistence section: the consumers draining what the loads queued, on an engine warmed
// until its CPU a document stops falling, against the raw multi-row upsert and the bulk indexing
// ceiling (measured on both sides of the drain), with the CPU a job of every process on the machine.
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { type BenchRun, QUICK, round2, runChild } from '../harness.ts'
import { cpuMeter, pidsOf } from '../proc.ts'
import { type PersistenceFigures, results } from '../report.ts'

/** `queued`: the jobs the loads before left in the queues. */
export const benchPersistence = async ({ env, unique, engine, fauxqs, reader }: BenchRun, queued: number) => {
  const persistence: Record<string, PersistenceFigures> = {}
  console.log('\n# Persistence')
  // The other processes the drain keeps busy, on the same cores: what binds is their sum.
  const machine = () => ({
    engine: engine?.pids() ?? [],
    mariadb: [...pidsOf('-x', 'mariadbd'), ...pidsOf('-x', 'mysqld')],
    fauxqs: fauxqs.pid ? [fauxqs.pid] : [],
    redis: pidsOf('-x', 'redis-server'),
  })
  const ceilingDocs = QUICK ? 20_000 : 50_000
  /** The bulk ceiling: the project's mapping, 250 documents a request, 4 in flight. */
  const ceiling = async () => {
    const engineMeter = cpuMeter({ engine: engine?.pids() ?? [] })
    const figures = await runChild<PersistenceFigures>(
      'bench/persistence.ts',
      [
        'index',
        JSON.stringify({
          docs: ceilingDocs,
          drop: [],
          name: `bench-ceiling-${unique}-${randomBytes(2).toString('hex')}`,
        }),
      ],
      env,
    )
    return { ...figures, engine_cpu_us: engineMeter.per(ceilingDocs).engine }
  }
  let ceilingBefore: PersistenceFigures | undefined
  if (queued > 0) {
    // The engine's first heavy indexing pays its JIT's warm-up, and it lasts: its CPU a document
    // fell 240 → 163 → 86 → 74 → 66 µs over five runs of 100,000 documents, so one such run
    // left the drain a half-warm engine and the ceiling after it a warmer one. Bulk runs until
    // the engine's CPU a document stops falling, so that both meet the same engine.
    const warmUpDocs = QUICK ? 25_000 : 50_000
    const warmUp: string[] = []
    // An engine not started here (ELASTICSEARCH_URL) has no CPU to read: three runs.
    const maxRounds = engine ? (QUICK ? 6 : 12) : 3
    for (let round = 0, best = Infinity, flat = 0; round < maxRounds && flat < 2; round++) {
      const engineMeter = cpuMeter({ engine: engine?.pids() ?? [] })
      const { per_s } = await runChild<PersistenceFigures>(
        'bench/persistence.ts',
        ['index', JSON.stringify({ docs: warmUpDocs, drop: [], name: `bench-warm-up-${unique}-${round}` })],
        env,
      )
      const cpu = engineMeter.per(warmUpDocs).engine ?? 0
      warmUp.push(engine ? `${per_s} docs/s at ${cpu} µs` : `${per_s} docs/s`)
      // Two runs in a row that do not beat the best by 7 %: warm (one alone can be a merge's).
      if (cpu < 0.93 * best) [best, flat] = [cpu, 0]
      else if (engine) flat++
    }
    console.log(
      `the engine's warm-up: bulk runs of ${warmUpDocs.toLocaleString('en')} documents until its CPU a document stops falling (µs a document): ${warmUp.join(', ')}`,
    )
    // The ceiling on both sides of the drain, so that the machine's drift over it weighs on both.
    ceilingBefore = await ceiling()
    persistence.consumers = await runChild<PersistenceFigures>(
      'bench/persistence.ts',
      ['drain', JSON.stringify({ jobs: queued, others: machine() })],
      env,
    )
    const others = persistence.consumers.others_cpu_us!
    const total = persistence.consumers.cpu_us! + Object.values(others).reduce((a, b) => a + b, 0)
    console.log(
      `project: consumers (8 pollers, ≤ 4 bulk requests in flight) drained ${queued} jobs, measured over the ${persistence.consumers.count} after the first tenth: ${persistence.consumers.per_s} jobs/s, ${persistence.consumers.cpu_us} µs of the consumers' CPU a job`,
    )
    console.log(
      `  CPU a job elsewhere: ${Object.entries(others)
        .map(([name, us]) => `${name} ${us} µs`)
        .join(
          ', ',
        )}; ${total} µs in all, of the ${Math.round((os.availableParallelism() * 1e6) / persistence.consumers.per_s)} µs the ${os.availableParallelism()} cores give a job at this rate`,
    )
  }
  const rows = QUICK ? 50_000 : 100_000
  persistence.upsert = await runChild(
    'bench/persistence.ts',
    ['upsert', JSON.stringify({ rows, chatId: reader.spareChatId })],
    env,
  )
  console.log(`baseline: raw multi-row upserts (250 rows, 4 connections): ${persistence.upsert.per_s} rows/s`)
  const runs = ceilingBefore ? [ceilingBefore, await ceiling()] : [await ceiling()]
  const meanOf = (values: Array<number | undefined>) =>
    values.some((value) => value === undefined)
      ? undefined
      : Math.round(values.reduce((sum: number, value) => sum + value!, 0) / values.length)
  persistence.bulk_index = {
    count: ceilingDocs,
    ms: meanOf(runs.map((run) => run.ms))!,
    per_s: meanOf(runs.map((run) => run.per_s))!,
    engine_cpu_us: meanOf(runs.map((run) => run.engine_cpu_us)),
    ...(runs.length === 2 && { runs_per_s: runs.map((run) => run.per_s) }),
  }
  const engineCpu = persistence.bulk_index.engine_cpu_us
  console.log(
    `ceiling: bulk indexing, project's mapping (250 docs, 4 in flight): ${persistence.bulk_index.per_s} docs/s${runs.length === 2 ? ` (the mean of ${runs.map((run) => run.per_s).join(' before and ')} after the drain)` : ''}${engineCpu === undefined ? '' : `, the engine's CPU ${engineCpu} µs a document`}`,
  )
  if (persistence.consumers) {
    const binding = Math.min(persistence.upsert.per_s, persistence.bulk_index.per_s)
    const ratio = round2(persistence.consumers.per_s / binding)
    console.log(
      `  → consumers / binding ceiling (${binding === persistence.bulk_index.per_s ? 'bulk indexing' : 'MySQL upserts'}): ${ratio} (target ≥ 0.8)`,
    )
  }
  results.persistence = persistence
}
