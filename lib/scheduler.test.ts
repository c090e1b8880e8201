import { describe, expect, it } from 'vitest'
import { silentLogger } from './logger.ts'
import { startScheduler } from './scheduler.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('startScheduler', () => {
  it('runs a job every interval and never twice at once', async () => {
    let running = 0
    let maxRunning = 0
    let runs = 0
    const scheduler = startScheduler(
      [
        {
          name: 'slow',
          intervalMs: 5,
          run: async () => {
            running++
            maxRunning = Math.max(maxRunning, running)
            await sleep(15)
            running--
            runs++
          },
        },
      ],
      silentLogger,
    )

    await sleep(120)
    await scheduler.stop()

    expect(runs).toBeGreaterThanOrEqual(3)
    expect(maxRunning).toBe(1)
  })

  it('keeps running a job after one of its runs fails', async () => {
    let runs = 0
    const errors: unknown[] = []
    const scheduler = startScheduler(
      [
        {
          name: 'flaky',
          intervalMs: 5,
          run: async () => {
            runs++
            if (runs === 1) throw new Error('boom')
          },
        },
      ],
      { ...silentLogger, error: (_msg, fields) => errors.push(fields?.err) },
    )

    await sleep(60)
    await scheduler.stop()

    expect(runs).toBeGreaterThanOrEqual(2)
    expect(errors).toHaveLength(1)
  })

  it('waits on stop for the run in progress and starts no other', async () => {
    let isFinished = false
    let runs = 0
    const scheduler = startScheduler(
      [
        {
          name: 'long',
          intervalMs: 1,
          run: async () => {
            runs++
            await sleep(50)
            isFinished = true
          },
        },
      ],
      silentLogger,
    )
    await sleep(20)

    await scheduler.stop()

    expect(isFinished).toBe(true)
    expect(runs).toBe(1)
  })

  it('stops at once while only waiting for the next run', async () => {
    let runs = 0
    const scheduler = startScheduler(
      [{ name: 'hourly', intervalMs: 3_600_000, run: async () => runs++ }],
      silentLogger,
    )

    const started = Date.now()
    await scheduler.stop()

    expect(Date.now() - started).toBeLessThan(100)
    expect(runs).toBe(0)
  })

  it('spreads the waits by up to 10% either way', async () => {
    const starts: number[] = []
    const scheduler = startScheduler(
      [{ name: 'jittered', intervalMs: 40, run: async () => void starts.push(Date.now()) }],
      silentLogger,
      () => 0,
    )

    await sleep(200)
    await scheduler.stop()

    const gaps = starts.slice(1).map((at, i) => at - starts[i]!)
    expect(gaps.length).toBeGreaterThan(1)
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(35)
  })
})
