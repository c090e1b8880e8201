// `npm run reconcile [-- --full | --incremental]`: one reconciliation of chats_count and
// messages_count, with the configuration the server uses (same environment, same defaults).
// Without a flag the mode is the scheduler's: a full sweep when the last one is
// RECONCILE_FULL_INTERVAL_S old. Prints the summary as JSON on stdout; logs go to stderr.
import { createReconcileCountsJob } from '../functions/reconcile-counts/job.ts'
import { loadConfig } from '../lib/config.ts'
import type { ReconcileMode } from '../lib/counts/reconcile.ts'
import { createDeps } from '../lib/deps.ts'
import { createLogger } from '../lib/logger.ts'
import { runMain } from '../lib/run-main.ts'

const modeOf = (args: readonly string[]): ReconcileMode | undefined => {
  if (args.includes('--full')) return 'full'
  if (args.includes('--incremental')) return 'incremental'
  return undefined
}

const main = async () => {
  const config = loadConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL, (line) => process.stderr.write(`${line}\n`))
  const deps = createDeps(config, { logger })
  try {
    const summary = await createReconcileCountsJob(deps)(deps.clock(), modeOf(process.argv.slice(2)))
    process.stdout.write(`${JSON.stringify(summary)}\n`)
  } finally {
    await deps.close()
  }
}

runMain(import.meta.url, main)
