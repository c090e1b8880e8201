// `npm run reindex [-- --batch-size=1000 --catch-up-minutes=1 --delete-old]`: rebuilds the search
// index from MySQL into a new versioned index, then moves the alias (SEARCH_INDEX) to it in one
// atomic step. For recovery (a lost or corrupt index) and for mapping changes (bump
// MAPPING_VERSION in lib/search/index-settings.ts, deploy, run this). Searches keep answering from
// the old index until the swap. Prints a progress bar on stderr and the summary as JSON on stdout.
//
// The rebuild and its catch-up pass: lib/search/reindex.ts.
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { createLogger } from '../lib/logger.ts'
import { runMain } from '../lib/run-main.ts'
import { isUnavailable } from '../lib/search/errors.ts'
import { type ReindexProgress, reindex } from '../lib/search/reindex.ts'

/** A one-line progress bar, redrawn in place on a terminal and every 10% otherwise. */
const createProgressBar = (stream: NodeJS.WriteStream) => {
  const started = performance.now()
  let lastDecile = -1
  return ({ phase, done, total }: ReindexProgress) => {
    const ratio = total === 0 ? 1 : Math.min(done / total, 1)
    const width = 30
    const filled = Math.round(ratio * width)
    const rate = Math.round(done / Math.max((performance.now() - started) / 1000, 0.001))
    const line = `${phase} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(ratio * 100)}% ${done}/${total} ${rate}/s`
    if (stream.isTTY) stream.write(`\r${line}${ratio === 1 ? '\n' : ''}`)
    else if (Math.floor(ratio * 10) !== lastDecile) {
      lastDecile = Math.floor(ratio * 10)
      stream.write(`${line}\n`)
    }
  }
}

const optionOf = (args: readonly string[], name: string) =>
  args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1]

const main = async () => {
  const args = process.argv.slice(2)
  const config = loadConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL, (line) => process.stderr.write(`${line}\n`))
  const deps = createDeps(config, { logger })
  try {
    const summary = await reindex(deps, {
      batchSize: Number(optionOf(args, 'batch-size') ?? 1_000),
      catchUpMarginMs: Number(optionOf(args, 'catch-up-minutes') ?? 1) * 60_000,
      deleteOld: args.includes('--delete-old'),
      onProgress: createProgressBar(process.stderr),
    })
    process.stdout.write(`${JSON.stringify(summary)}\n`)
  } finally {
    await deps.close()
  }
}

runMain(import.meta.url, main, (error) =>
  isUnavailable(error)
    ? `reindex: the search engine does not answer (${(error as Error).message}); run it again once it does`
    : undefined,
)
