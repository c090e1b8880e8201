// What every section of `npm run bench` (bench/run.ts) shares: the run's options, its child
// processes (each script in a process of its own, stdout to a log file, its answer over IPC), the
// loads with their rounds, and the statistics they are summed up with.
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Figures, LoadSpec } from './load.ts'
import { pidsOf } from './proc.ts'
import type { seedReadData } from './seed.ts'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const ALL_SECTIONS = [
  'http',
  'reads',
  'persistence',
  'indexing',
  'lag',
  'search',
  'live',
  'reconcile',
] as const
export type Section = (typeof ALL_SECTIONS)[number]

export const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'search-docs': { type: 'string' },
  },
})
export const QUICK = options.quick!
// Each comparison runs its loads in ROUNDS rounds, baseline and project alternating, so that what
// else the machine does weighs on both alike; each load runs DURATION_S in all.
export const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (QUICK ? 6 : 12))
export const ROUNDS = QUICK ? 2 : 3
export const CONNECTIONS = 100
export const sections = new Set<Section>(
  options.only
    ? (options.only.split(',') as Section[])
    : ALL_SECTIONS.filter((section) => !(QUICK && section === 'reconcile')),
)
export const CHAT_DEPTH = 100_000
export const SEARCH_DOCS = Number(options['search-docs'] ?? (QUICK ? 120_000 : 200_000))
export const PAGE = `after=${CHAT_DEPTH - 1_000}&limit=50`

// Children write their stdout (the server's access log) to a file: nobody reads it during the run.
export const logPath = join(os.tmpdir(), `bench-${process.pid}.log`)
const logFd = openSync(logPath, 'w')

// BENCH_CPU_PROF_DIR=dir: the project's server and its consumers' drain write a CPU profile there
// (node --cpu-prof), one file per process.
const profileArgs = (script: string, args: string[]) =>
  process.env.BENCH_CPU_PROF_DIR &&
  (script === 'bench/server.ts' || (script === 'bench/persistence.ts' && args[0] === 'drain'))
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : []

export const start = (script: string, args: string[], env: Record<string, string> = {}) =>
  fork(join(ROOT, script), args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    execArgv: [...process.execArgv, ...profileArgs(script, args)],
    stdio: ['ignore', logFd, 'inherit', 'ipc'],
  })

export const firstMessage = <T>(child: ChildProcess) =>
  new Promise<T>((resolve, reject) => {
    child.once('message', (message) => resolve(message as T))
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.join(' ')} exited with ${code}`)))
  })

export const runChild = async <T>(script: string, args: string[], env: Record<string, string> = {}) =>
  firstMessage<T>(start(script, args, env))

export const load = (spec: Omit<LoadSpec, 'connections' | 'durationS'> & Partial<LoadSpec>) =>
  runChild<Figures>('bench/load.ts', [
    JSON.stringify({ connections: CONNECTIONS, durationS: DURATION_S, ...spec }),
  ])

/**
 * Runs the loads in ROUNDS rounds (each load DURATION_S / ROUNDS per round, the order rotating), and
 * gives each load's mean req/s and its median p50 and p99 over the rounds.
 */
export const interleaved = async (specs: Array<Parameters<typeof load>[0]>) => {
  const runs: Figures[][] = specs.map(() => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < specs.length; k++) {
      const index = (k + round) % specs.length
      runs[index]!.push(await load({ ...specs[index]!, durationS: DURATION_S / ROUNDS }))
    }
  }
  return runs.map(
    (figures): Figures => ({
      requests_per_s: Math.round(figures.reduce((sum, f) => sum + f.requests_per_s, 0) / figures.length),
      p50_ms: median(figures.map((f) => f.p50_ms)),
      p99_ms: median(figures.map((f) => f.p99_ms)),
      accepted: figures.reduce((sum, f) => sum + f.accepted, 0),
      errors: figures.reduce((sum, f) => sum + f.errors, 0),
      non_2xx: figures.reduce((sum, f) => sum + f.non_2xx, 0),
    }),
  )
}

export const show = (title: string, f: Figures) => {
  console.log(
    `${title.padEnd(44)} ${String(f.requests_per_s).padStart(7)} req/s  p50 ${f.p50_ms} ms  p99 ${f.p99_ms} ms${f.errors + f.non_2xx ? `  errors ${f.errors}, non-2xx ${f.non_2xx}` : ''}`,
  )
  return f
}

export const round2 = (n: number) => Math.round(n * 100) / 100
export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}
export const median = (values: number[]) => percentile(values, 50)
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}
export const post = (url: string, body: unknown) =>
  json(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/**
 * The test suite's search engine (tests/search-engine: OpenSearch behind the Elasticsearch
 * compatibility proxy), started through its CLI in a process of its own like every other part of
 * the run: the proxy then does not share this process's event loop with the probes and the
 * indexing, and bench/ depends on the engine's command line, not on test code. The CLI prints
 * SEARCH_ENGINE_URL=…, and shuts the engine down on SIGTERM or when this process goes.
 */
export const startSearchEngine = async () => {
  const child = spawn(process.execPath, ['tests/search-engine/start.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    // The JVM as Elasticsearch runs it in production (G1, the optimizing JIT, a heap of its own),
    // not the test suite's quick-start flags (serial GC, C1 only, 512 MiB): with those, the bulk
    // ceiling was 10,119 docs/s against 13,708–17,554, and searches matching the whole chat took 2–4×
    // as long (at 200,000 documents), which the figures would have charged to us. Either variable
    // set by hand wins.
    env: {
      ...process.env,
      SEARCH_ENGINE_HEAP: process.env.SEARCH_ENGINE_HEAP ?? '2g',
      SEARCH_ENGINE_JAVA_OPTS:
        process.env.SEARCH_ENGINE_JAVA_OPTS ?? '-XX:-UseSerialGC -XX:+UseG1GC -XX:TieredStopAtLevel=4',
    },
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('SEARCH_ENGINE_URL=')) resolve(line.slice('SEARCH_ENGINE_URL='.length))
    })
    void exited.then((code) => reject(new Error(`the search engine exited with ${code}`)))
  })
  return {
    url,
    /** The CLI's process (the compatibility proxy) and its JVM. */
    pids: () => [child.pid!, ...pidsOf('-P', String(child.pid))],
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** What bench/run.ts started and seeded, handed to every section. */
export interface BenchRun {
  /** Part of this run's queue, index and key names, so that no other run's meet them. */
  unique: string
  /** The environment of every process the run starts: the server's config, with this run's names. */
  env: Record<string, string>
  /** The bare baseline's URL (bench/baseline.ts), and the project's server's (bench/server.ts). */
  bare: string
  server: string
  /** The search engine started here; undefined when ELASTICSEARCH_URL names a running one. */
  engine: Awaited<ReturnType<typeof startSearchEngine>> | undefined
  fauxqs: ChildProcess
  /** An application with chats 1–3, written through the API: what the creates and the lag write to. */
  writer: { token: string }
  /** The reads' data (bench/seed.ts). */
  reader: Awaited<ReturnType<typeof seedReadData>>
  /** Starts another server script with this run's environment (and `extra`); gives its URL. */
  startServer(script: string, extra?: Record<string, string>): Promise<string>
}
