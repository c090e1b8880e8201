import type { Logger } from './logger.ts'

export interface ScheduledJob {
  name: string
  /** Time from the end of one run to the start of the next, before jitter. */
  intervalMs: number
  run(): Promise<unknown>
}

export interface RunningScheduler {
  /** Cancels the next runs and waits for the runs in progress to finish. */
  stop(): Promise<void>
}

// ±10%: servers started together by one deploy drift apart instead of racing for the same lock
// every interval (the loser of a race only skips, but the spread keeps the runs evenly paced).
const jittered = (ms: number, random: () => number) => Math.max(0, Math.round(ms * (0.9 + 0.2 * random())))

/**
 * Runs each job in its own loop: wait about `intervalMs`, run, wait again. A job never overlaps
 * itself; a failed run is logged and the loop goes on. The first run comes after one jittered interval.
 *
 * @example const scheduler = startScheduler([{ name: 'reconcile-counts', intervalMs: 60_000, run: () => job() }], logger)
 */
export const startScheduler = (
  jobs: readonly ScheduledJob[],
  logger: Pick<Logger, 'debug' | 'error'>,
  random: () => number = Math.random,
): RunningScheduler => {
  let isStopped = false
  const timers = new Set<NodeJS.Timeout>()
  const wakers = new Set<() => void>()

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer)
        wakers.delete(resolve)
        resolve()
      }, ms)
      // The scheduler alone never keeps the process alive: the server or the test does.
      timer.unref()
      timers.add(timer)
      wakers.add(resolve)
    })

  const loop = async (job: ScheduledJob) => {
    while (!isStopped) {
      await sleep(jittered(job.intervalMs, random))
      if (isStopped) return
      const started = performance.now()
      try {
        const result = await job.run()
        logger.debug('scheduled job ran', {
          job: job.name,
          ms: Math.round(performance.now() - started),
          result,
        })
      } catch (error) {
        logger.error('scheduled job failed', { job: job.name, err: error })
      }
    }
  }

  const loops = jobs.map(loop)
  return {
    stop: async () => {
      isStopped = true
      for (const timer of timers) clearTimeout(timer)
      for (const wake of wakers) wake()
      timers.clear()
      wakers.clear()
      await Promise.all(loops)
    },
  }
}
