import type { Logger } from './logger.ts'

/**
 * Runs `work` until it succeeds, waiting with capped exponential backoff between attempts.
 * For start-up steps whose dependency may still be booting.
 */
export const retryWithBackoff = async <T>(
  what: string,
  work: () => Promise<T>,
  logger: Pick<Logger, 'warn'>,
  { attempts = 30, firstDelayMs = 250, maxDelayMs = 5_000 } = {},
): Promise<T> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (attempt >= attempts) throw error
      const delay = Math.min(firstDelayMs * 2 ** (attempt - 1), maxDelayMs)
      logger.warn(`${what} failed, retrying`, { attempt, delay_ms: delay, err: error })
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}
