import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createLogger } from './logger.ts'

const capture = () => {
  const lines: string[] = []
  return { lines, logger: createLogger('info', (line) => lines.push(line)) }
}

describe('createLogger', () => {
  it('writes one JSON object per line, with level, time, msg, the child fields and the fields', () => {
    const { lines, logger } = capture()

    logger.child({ request_id: 'r1' }).info('request', { status: 202, skipped: undefined, route: '/a/"b"' })

    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      msg: 'request',
      request_id: 'r1',
      status: 202,
      route: '/a/"b"',
    })
  })

  it('keeps lines under its level out, serializes errors with their cause, and lets a field override', () => {
    const { lines, logger } = capture()

    logger.debug('hidden')
    logger
      .child({ queue: 'chats' })
      .error('failed', { err: new Error('outer', { cause: new Error('inner') }), queue: 'messages' })

    expect(lines).toHaveLength(1)
    const entry = JSON.parse(lines[0]!)
    expect(entry).toMatchObject({
      level: 'error',
      queue: 'messages',
      err: { name: 'Error', message: 'outer', cause: { message: 'inner' } },
    })
  })

  it('writes to stdout in batches and loses nothing when the process exits right after logging', () => {
    const script = `
      import { createLogger } from ${JSON.stringify(fileURLToPath(new URL('./logger.ts', import.meta.url)))}
      const logger = createLogger('info')
      for (let i = 0; i < 3; i++) logger.info('line', { i })
      process.exit(0)`
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })

    expect(
      output
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).i),
    ).toEqual([0, 1, 2])
  })
})
