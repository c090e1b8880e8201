import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import mysql from 'mysql2/promise'
import { describe, expect, it } from 'vitest'
import { configSchema, loadConfig } from '../lib/config.ts'
import {
  type ComposeService,
  environmentOf,
  healthcheckText,
  isGitCheckout,
  loadCompose,
  parseDotenv,
  REPO_ROOT,
  readRepoFile,
} from './docker-support.ts'
import { serverUrl } from './harness-url.ts'

const compose = loadCompose()
const services = compose.services
const service = (name: string): ComposeService => {
  const found = services[name]
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}
const BACKING_SERVICES = ['mysql', 'redis', 'localstack', 'elasticsearch']
const defaults = loadConfig({})

/** The Compose schema: shared/ beside the repository (as in CI), else the copy committed here. */
const schemaPath = () => {
  const shared = join(REPO_ROOT, '../shared/schemas/compose-spec.json')
  return existsSync(shared) ? shared : join(REPO_ROOT, 'tests/schemas/compose-spec.json')
}

const dependsOn = (svc: ComposeService): Record<string, string> => {
  const deps = svc.depends_on ?? {}
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']))
  return Object.fromEntries(
    Object.entries(deps).map(([name, dep]) => [name, dep.condition ?? 'service_started']),
  )
}

const volumeSources = (svc: ComposeService) =>
  (svc.volumes ?? []).map((volume) =>
    typeof volume === 'string' ? volume.split(':')[0]! : (volume.source ?? ''),
  )

const isBindMount = (source: string) => /^[./~]/.test(source)

describe('docker-compose.yml', () => {
  it('validates against the Compose Specification schema', () => {
    const { $schema: _, ...schema } = JSON.parse(readFileSync(schemaPath(), 'utf8'))
    const ajv = new Ajv({ allErrors: true, strict: false })
    addFormats.default(ajv)
    ajv.addFormat('duration', /^([+-]?\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/)
    const validate = ajv.compile(schema)

    const valid = validate(compose)

    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([])
    expect(valid).toBe(true)
  })

  it('keeps its committed copy of the schema equal to the shared one', () => {
    const shared = join(REPO_ROOT, '../shared/schemas/compose-spec.json')
    if (!existsSync(shared)) return

    const copy = JSON.parse(readRepoFile('tests/schemas/compose-spec.json'))

    expect(copy).toEqual(JSON.parse(readFileSync(shared, 'utf8')))
  })

  it('depends only on services that exist, and waits for health only where there is a healthcheck', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [target, condition] of Object.entries(dependsOn(svc))) {
        expect(Object.keys(services), `${name} depends on ${target}`).toContain(target)
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition)
        if (condition === 'service_healthy') {
          expect(healthcheckText(service(target)), `${target} (behind service_healthy)`).not.toBe('')
          expect(service(target).healthcheck?.disable).not.toBe(true)
        }
      }
    }
  })

  it('declares every named volume, and bind-mounts only paths a fresh clone has, labelled for SELinux', () => {
    const declared = Object.keys(compose.volumes ?? {})

    for (const [name, svc] of Object.entries(services)) {
      for (const volume of svc.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : (volume.source ?? '')
        if (isBindMount(source)) {
          expect(source, `${name} mounts ${source}`).toMatch(/^\.\//)
          expect(existsSync(join(REPO_ROOT, source)), `${name} mounts ${source}`).toBe(true)
          // Without a label an SELinux host (Fedora, RHEL) denies the container reading the mount.
          const options = typeof volume === 'string' ? (volume.split(':')[2] ?? '') : ''
          expect(options.split(','), `${name} mounts ${source}`).toEqual(expect.arrayContaining(['z']))
        } else {
          expect(declared, `${name} uses volume ${source}`).toContain(source)
        }
      }
    }
  })

  it('keeps the test service out of `docker compose up`, and nothing started by `up` depends on it', () => {
    expect(service('test').profiles).toEqual(['test'])
    for (const name of [...BACKING_SERVICES, 'app']) {
      expect(service(name).profiles, name).toBeUndefined()
      expect(Object.keys(dependsOn(service(name)))).not.toContain('test')
    }
  })

  it('pins every image to a version: no latest, no untagged', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (!svc.image) {
        expect(svc.build, `${name} has neither image nor build`).toBeDefined()
        continue
      }
      const tag = svc.image.split('@')[0]!.match(/:([^/:]+)$/)?.[1]
      expect(tag, `${name}: ${svc.image}`).toBeDefined()
      expect(tag, `${name}: ${svc.image}`).not.toBe('latest')
      if (!svc.build) expect(tag, `${name}: ${svc.image}`).toMatch(/^v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$/)
    }
  })

  it('runs MySQL 8.4 in utf8mb4, healthy only once the app user queries its database over TCP', () => {
    const mysql = service('mysql')
    const health = healthcheckText(mysql)

    expect(mysql.image).toMatch(/^mysql:8\.4(\.\d+)?$/)
    expect(mysql.command).toEqual(
      expect.arrayContaining(['--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_520_ci']),
    )
    expect(health).not.toContain('mysqladmin ping')
    expect(health).toContain('--protocol=tcp')
    expect(health).toContain('-h127.0.0.1')
    expect(volumeSources(mysql)).toContain('mysql-data')
  })

  it('runs Redis with an append-only file in a named volume, so numbering survives a restart', () => {
    const redis = service('redis')
    const command = ([] as string[]).concat(redis.command ?? []).join(' ')

    expect(redis.image).toMatch(/^redis:(7|8)\.\d+(\.\d+)?(-alpine)?$/)
    expect(command).toMatch(/--appendonly yes/)
    expect(command).toMatch(/--appendfsync everysec/)
    expect(redis.volumes).toContain('redis-data:/data')
    expect(healthcheckText(redis)).toContain('redis-cli ping')
  })

  it('runs LocalStack 4.14.0 for SQS, healthy once SQS answers, with no init script to mount', () => {
    const localstack = service('localstack')
    const env = environmentOf(localstack)

    expect(localstack.image).toBe('localstack/localstack:4.14.0')
    expect(env.SERVICES?.split(',')).toContain('sqs')
    expect(env.SQS_ENDPOINT_STRATEGY).toBe('path')
    expect(env.LOCALSTACK_HOST).toBe('localstack:4566')
    expect(localstack.volumes).toBeUndefined()
    expect(healthcheckText(localstack)).toContain('/_localstack/health')
    expect(healthcheckText(localstack)).toContain('"sqs"')
    // The app creates the queues itself, so nothing else has to.
    expect(loadConfig(environmentOf(service('app'))).SQS_CREATE_QUEUES).toBe(true)
  })

  it('runs one Elasticsearch node of the client major version, with a bounded heap and a health check', () => {
    const elasticsearch = service('elasticsearch')
    const env = environmentOf(elasticsearch)
    const pkg = JSON.parse(readRepoFile('package.json'))
    const clientMajor = String(pkg.dependencies['@elastic/elasticsearch']).match(/(\d+)\./)?.[1]

    expect(elasticsearch.image).toMatch(
      new RegExp(`^docker\\.elastic\\.co/elasticsearch/elasticsearch:${clientMajor}\\.\\d+\\.\\d+$`),
    )
    expect(env).toMatchObject({
      'discovery.type': 'single-node',
      'xpack.security.enabled': 'false',
      'cluster.routing.allocation.disk.threshold_enabled': 'false',
      ES_JAVA_OPTS: '-Xms512m -Xmx512m',
    })
    expect(elasticsearch.mem_limit ?? elasticsearch.deploy?.resources?.limits?.memory).toBeDefined()
    expect(healthcheckText(elasticsearch)).toContain('_cluster/health?wait_for_status=yellow')
  })

  it('builds the app from the Dockerfile, starts it after every backing service is healthy, on port 3000', () => {
    const app = service('app')

    expect(app.build).toMatchObject({ context: '.' })
    expect(app.pull_policy, 'rebuilt on every `up`').toBe('build')
    expect(dependsOn(app)).toEqual(
      Object.fromEntries(BACKING_SERVICES.map((name) => [name, 'service_healthy'])),
    )
    expect(app.ports).toContain('3000:3000')
  })

  it("gives the app an environment that passes the app's config schema and points at the compose services", () => {
    const env = environmentOf(service('app'))
    const mysqlEnv = environmentOf(service('mysql'))

    const config = loadConfig(env)

    expect(Object.keys(env).filter((key) => !(key in configSchema.entries))).toEqual([])
    expect(config.PORT).toBe(3000)
    expect(new URL(config.DATABASE_URL)).toMatchObject({
      hostname: 'mysql',
      port: '3306',
      username: mysqlEnv.MYSQL_USER,
      password: mysqlEnv.MYSQL_PASSWORD,
      pathname: `/${mysqlEnv.MYSQL_DATABASE}`,
    })
    expect(new URL(config.REDIS_URL)).toMatchObject({ hostname: 'redis', port: '6379' })
    expect(new URL(config.SQS_ENDPOINT)).toMatchObject({ hostname: 'localstack', port: '4566' })
    expect(new URL(config.ELASTICSEARCH_URL)).toMatchObject({ hostname: 'elasticsearch', port: '9200' })
    expect(config.AWS_ACCESS_KEY_ID).toBeTruthy()
    expect(config.AWS_SECRET_ACCESS_KEY).toBeTruthy()
    expect(config.DATABASE_MIGRATE_ON_START).toBe(true)
    expect(config.RUN_WORKERS).toBe(true)
  })

  it('runs the test suite against the stack from the build stage, with a user that may create databases', () => {
    const test = service('test')
    const env = environmentOf(test)
    const dockerfile = readRepoFile('Dockerfile')
    const target = typeof test.build === 'object' ? test.build.target : undefined

    expect(target).toBeDefined()
    expect(test.pull_policy, 'rebuilt on every `run`').toBe('build')
    expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${target}$`, 'm'))
    expect(test.command).toEqual(['npm', 'test'])
    expect(dependsOn(test)).toEqual(
      Object.fromEntries(BACKING_SERVICES.map((name) => [name, 'service_healthy'])),
    )
    expect(new URL(env.TEST_DATABASE_URL!)).toMatchObject({
      hostname: 'mysql',
      username: 'root',
      password: environmentOf(service('mysql')).MYSQL_ROOT_PASSWORD,
    })
    expect(new URL(env.REDIS_URL!).hostname).toBe('redis')
    expect(new URL(env.SQS_ENDPOINT!).hostname).toBe('localstack')
    expect(new URL(env.ELASTICSEARCH_URL!).hostname).toBe('elasticsearch')
  })
})

/** The healthcheck's shell command as the container runs it: Compose turns `$$` into `$`. */
const healthcheckShell = (svc: ComposeService) => {
  const test = svc.healthcheck?.test
  expect(Array.isArray(test) && test[0] === 'CMD-SHELL', 'a CMD-SHELL healthcheck').toBe(true)
  return (test as string[])[1]!.replaceAll('$$', '$')
}

const hasMysqlClient = spawnSync('mysql', ['--version']).status === 0

/** The compose MySQL healthcheck run for real, against the test MySQL server (MariaDB here). */
describe.skipIf(!hasMysqlClient)('the MySQL healthcheck', () => {
  const server = new URL(serverUrl())
  // The same command, aimed at the test server instead of the container's own 127.0.0.1.
  const command = healthcheckShell(service('mysql')).replace(
    '-h127.0.0.1',
    `-h${server.hostname} -P${server.port || 3306}`,
  )
  const unique = randomBytes(3).toString('hex')
  const user = {
    MYSQL_USER: `hc_${unique}`,
    MYSQL_PASSWORD: `pw_${unique}`,
    MYSQL_DATABASE: `chat_hc_${unique}`,
  }
  const run = (env: Record<string, string>) =>
    spawnSync('/bin/sh', ['-c', command], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 })
      .status

  const withUser = async (act: () => void) => {
    const admin = await mysql.createConnection(server.toString())
    try {
      await admin.query(`CREATE DATABASE \`${user.MYSQL_DATABASE}\``)
      await admin.query(`CREATE USER '${user.MYSQL_USER}'@'%' IDENTIFIED BY '${user.MYSQL_PASSWORD}'`)
      await admin.query(`GRANT ALL ON \`${user.MYSQL_DATABASE}\`.* TO '${user.MYSQL_USER}'@'%'`)
      act()
    } finally {
      await admin.query(`DROP USER IF EXISTS '${user.MYSQL_USER}'@'%'`)
      await admin.query(`DROP DATABASE IF EXISTS \`${user.MYSQL_DATABASE}\``)
      await admin.end()
    }
  }

  it("passes once the app's user can log in and query the app's database", async () => {
    await withUser(() => {
      expect(run(user)).toBe(0)
    })
  })

  it('fails on a wrong password, or a database the user may not use, where `mysqladmin ping` passes', async () => {
    await withUser(() => {
      const denied = { ...user, MYSQL_PASSWORD: 'wrong' }
      const ping = spawnSync('mysqladmin', [
        'ping',
        `-h${server.hostname}`,
        `-P${server.port || 3306}`,
        '--protocol=tcp',
        `-u${denied.MYSQL_USER}`,
        `-p${denied.MYSQL_PASSWORD}`,
        '--silent',
      ])

      expect(run(denied)).not.toBe(0)
      expect(run({ ...user, MYSQL_DATABASE: 'mysql' })).not.toBe(0)
      expect(ping.status, 'mysqladmin ping on access denied').toBe(0)
    })
  })
})

describe('.gitattributes', () => {
  it
    .skipIf(!isGitCheckout)
    .each(['.ci/run', 'Dockerfile', 'docker-compose.yml', 'package.json', 'scripts/check-node.js'])(
    'checks %s out with LF line endings on every OS',
    (path) => {
      const attributes = execFileSync('git', ['check-attr', 'text', 'eol', '--', path], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      })

      expect(attributes).toContain(`${path}: text: auto`)
      expect(attributes).toContain(`${path}: eol: lf`)
    },
  )
})

describe('.env.example', () => {
  const example = parseDotenv(readRepoFile('.env.example'))

  it('lists exactly the variables of the config schema', () => {
    expect(Object.keys(example).sort()).toEqual(Object.keys(configSchema.entries).sort())
  })

  it('gives each its default', () => {
    expect(loadConfig(example)).toEqual(defaults)
  })

  it('explains each with a comment on the line above', () => {
    const lines = readRepoFile('.env.example').split('\n')

    for (const key of Object.keys(example)) {
      const at = lines.findIndex((line) => line.startsWith(`${key}=`))
      expect(lines[at - 1], key).toMatch(/^# \S/)
    }
  })
})
