import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createCreateApplicationApp } from '../functions/create-application/app.ts'
import { createGetApplicationApp } from '../functions/get-application/app.ts'
import { createUpdateApplicationApp } from '../functions/update-application/app.ts'
import { errorOutput } from '../lib/api/schemas.ts'
import { createApplication } from '../lib/applications.ts'
import { isDatabaseUnavailable } from '../lib/db.ts'
import type { Deps } from '../lib/deps.ts'
import { createApi } from '../lib/http/api.ts'
import { silentLogger } from '../lib/logger.ts'
import { expectShape, json } from './factories.ts'
import { createTestDeps, poolOf, workerDatabaseUrl } from './harness.ts'
import { startTcpSwitch } from './tcp-switch.ts'

const appsOn = (deps: Deps) =>
  createApi(silentLogger)
    .route('/', createCreateApplicationApp(deps))
    .route('/', createUpdateApplicationApp(deps))
    .route('/', createGetApplicationApp(deps))

const timed = async (work: () => Response | Promise<Response>) => {
  const started = performance.now()
  const res = await work()
  return { res, ms: performance.now() - started, body: expectShape(errorOutput, await res.json()) }
}

const expectUnavailable = (answer: Awaited<ReturnType<typeof timed>>, withinMs: number) => {
  expect(answer.res.status).toBe(503)
  expect(answer.res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
  expect(answer.body.error.code).toBe('unavailable')
  expect(answer.body.error.message).toMatch(/database/)
  expect(answer.ms).toBeLessThan(withinMs)
}

describe('when MySQL refuses a statement', () => {
  let deps: Deps
  let admin: mysql.Connection
  const cleanups: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    deps = await createTestDeps({ DATABASE_LOCK_WAIT_TIMEOUT_S: '1' })
    admin = await mysql.createConnection(workerDatabaseUrl())
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  afterAll(async () => {
    await admin.end()
    await deps.close()
  })

  it('answers 503 within the lock wait bound when another transaction holds the row (1205)', async () => {
    const { token } = await createApplication(deps, { name: 'locked' })
    await admin.beginTransaction()
    cleanups.push(() => admin.rollback())
    await admin.query('SELECT id FROM applications WHERE token = ? FOR UPDATE', [token])

    const answer = await timed(() =>
      appsOn(deps).request(`/applications/${token}`, json('PATCH', { name: 'renamed' })),
    )

    expectUnavailable(answer, 5_000)
  })

  it('answers 503 within the query bound when MySQL accepts connections and never answers, and recovers', async () => {
    const mysqlUrl = new URL(workerDatabaseUrl())
    const network = await startTcpSwitch(new URL(`tcp://${mysqlUrl.host}`))
    cleanups.push(() => network.close())
    const through = new URL(workerDatabaseUrl())
    through.host = new URL(network.url).host
    const stalled = await createTestDeps({
      DATABASE_URL: through.toString(),
      DATABASE_QUERY_TIMEOUT_MS: '1000',
    })
    cleanups.push(() => stalled.close())
    const { token } = await createApplication(deps, { name: 'black hole' })
    const app = appsOn(stalled)
    const before = await app.request(`/applications/${token}`)

    network.set('blackhole')
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => timed(() => app.request(`/applications/${token}`))),
    )
    network.set('pass')
    const after = await app.request(`/applications/${token}`)

    expect(before.status).toBe(200)
    for (const answer of answers) expectUnavailable(answer, 3_000)
    expect(after.status).toBe(200)
  })

  it('answers 503 when the database user may not write (1142)', async () => {
    const user = `ro_${randomBytes(4).toString('hex')}`
    const database = new URL(workerDatabaseUrl()).pathname.slice(1)
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'x'`)
    cleanups.push(() => admin.query(`DROP USER '${user}'@'%'`))
    await admin.query(`GRANT SELECT ON \`${database}\`.* TO '${user}'@'%'`)
    const url = new URL(workerDatabaseUrl())
    url.username = user
    url.password = 'x'
    const readOnly = await createTestDeps({ DATABASE_URL: url.toString() })
    cleanups.push(() => readOnly.close())
    const { token } = await createApplication(deps, { name: 'writable elsewhere' })

    const created = await timed(() => appsOn(readOnly).request('/applications', json('POST', { name: 'x' })))
    const renamed = await timed(() =>
      appsOn(readOnly).request(`/applications/${token}`, json('PATCH', { name: 'y' })),
    )

    expectUnavailable(created, 2_000)
    expectUnavailable(renamed, 2_000)
  })

  it('answers 503 when the session is read-only (1792)', async () => {
    const readOnly = await createTestDeps()
    cleanups.push(() => readOnly.close())
    poolOf(readOnly).pool.on('connection', (connection) => {
      connection.query('SET SESSION TRANSACTION READ ONLY', () => {})
    })

    const created = await timed(() => appsOn(readOnly).request('/applications', json('POST', { name: 'x' })))

    expectUnavailable(created, 2_000)
  })

  it.each([
    [1205, 'ER_LOCK_WAIT_TIMEOUT', 'Lock wait timeout exceeded; try restarting transaction'],
    [1213, 'ER_LOCK_DEADLOCK', 'Deadlock found when trying to get lock; try restarting transaction'],
    [
      1290,
      'ER_OPTION_PREVENTS_STATEMENT',
      'The MySQL server is running with the --super-read-only option so it cannot execute this statement',
    ],
    [1836, 'ER_READ_ONLY_MODE', 'Running in read-only mode'],
    [1792, 'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION', 'Cannot execute statement in a READ ONLY transaction'],
    [1969, 'ER_STATEMENT_TIMEOUT', 'Query execution was interrupted (max_statement_time exceeded)'],
    [3024, 'ER_QUERY_TIMEOUT', 'Query execution was interrupted, maximum statement execution time exceeded'],
  ])('classifies errno %i (%s) as the database being unavailable', (errno, code, message) => {
    // MySQL's read-only modes need SET GLOBAL on the shared server; these are the driver's errors
    // as MySQL 8.4 and MariaDB 10.11 send them.
    const error = Object.assign(new Error(message), { errno, code, sqlState: 'HY000' })

    expect(isDatabaseUnavailable(error)).toBe(true)
  })

  it('leaves a statement error that is a bug alone (1064, a syntax error)', async () => {
    const error = await admin.query('SELEC 1').catch((caught: unknown) => caught)

    expect(isDatabaseUnavailable(error)).toBe(false)
  })
})
