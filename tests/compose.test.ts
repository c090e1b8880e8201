import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configSchema, loadConfig } from '../lib/config.ts'
import { deadLetterName } from '../lib/queue.ts'
import {
  type ComposeService,
  environmentOf,
  gitFileModes,
  healthcheckText,
  isGitCheckout,
  loadCompose,
  parseDotenv,
  REPO_ROOT,
  readRepoFile,
} from './docker-support.ts'

const compose = loadCompose()
const services = compose.services
const service = (name: string): ComposeService => {
  const found = services[name]
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}
const BACKING_SERVICES = ['mysql', 'redis', 'localstack', 'elasticsearch']
const INIT_SCRIPT = 'localstack/init/ready.d/create-queues.sh'
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

  it('declares every named volume, and bind-mounts only paths a fresh clone has', () => {
    const declared = Object.keys(compose.volumes ?? {})

    for (const [name, svc] of Object.entries(services)) {
      for (const source of volumeSources(svc)) {
        if (isBindMount(source)) {
          expect(source, `${name} mounts ${source}`).toMatch(/^\.\//)
          expect(existsSync(join(REPO_ROOT, source)), `${name} mounts ${source}`).toBe(true)
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

  it('runs MySQL 8.4 in utf8mb4, healthy only once the app user answers over TCP', () => {
    const mysql = service('mysql')
    const env = environmentOf(mysql)
    const health = healthcheckText(mysql)

    expect(mysql.image).toMatch(/^mysql:8\.4(\.\d+)?$/)
    expect(mysql.command).toEqual(
      expect.arrayContaining(['--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_520_ci']),
    )
    expect(health).toContain('mysqladmin ping')
    expect(health).toContain('--protocol=tcp')
    expect(health).toContain('127.0.0.1')
    expect(health).toContain(`-u${env.MYSQL_USER}`)
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

  it('runs LocalStack 4.14.0 for SQS, healthy once the init script has succeeded', () => {
    const localstack = service('localstack')
    const env = environmentOf(localstack)

    expect(localstack.image).toBe('localstack/localstack:4.14.0')
    expect(env.SERVICES?.split(',')).toContain('sqs')
    expect(env.SQS_ENDPOINT_STRATEGY).toBe('path')
    expect(env.LOCALSTACK_HOST).toBe('localstack:4566')
    expect(localstack.volumes).toContain('./localstack/init/ready.d:/etc/localstack/init/ready.d:ro')
    expect(healthcheckText(localstack)).toContain('/_localstack/init/ready')
    expect(healthcheckText(localstack)).toContain('completed')
    expect(healthcheckText(localstack)).toContain('SUCCESSFUL')
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

describe('the LocalStack init script', () => {
  const script = readRepoFile(INIT_SCRIPT)
  /** `NAME="${VAR:-default}"` assignments of the script: VAR and its default. */
  const assignment = (name: string) => {
    const match = script.match(new RegExp(`^${name}="\\$\\{(\\w+):-([^}]*)\\}"$`, 'm'))
    if (!match) throw new Error(`${INIT_SCRIPT} does not set ${name}`)
    return { variable: match[1]!, fallback: match[2]! }
  }

  it('starts with a shebang', () => {
    expect(script.split('\n')[0]).toMatch(/^#!\/(usr\/)?bin\/(env )?(ba)?sh$/)
  })

  it.skipIf(!isGitCheckout)('is committed executable (mode 100755)', () => {
    expect(gitFileModes('localstack')).toContainEqual({ mode: '100755', path: INIT_SCRIPT })
  })

  it('uses the queue names, dead-letter suffix and redrive count of the app', () => {
    const app = loadConfig(environmentOf(service('app')))

    expect(assignment('CHATS_QUEUE')).toEqual({
      variable: 'SQS_CHATS_QUEUE',
      fallback: defaults.SQS_CHATS_QUEUE,
    })
    expect(assignment('MESSAGES_QUEUE')).toEqual({
      variable: 'SQS_MESSAGES_QUEUE',
      fallback: defaults.SQS_MESSAGES_QUEUE,
    })
    expect(assignment('MAX_RECEIVES')).toEqual({
      variable: 'SQS_MAX_RECEIVES',
      fallback: String(defaults.SQS_MAX_RECEIVES),
    })
    expect(assignment('VISIBILITY_TIMEOUT_S')).toEqual({
      variable: 'SQS_VISIBILITY_TIMEOUT_S',
      fallback: String(defaults.SQS_VISIBILITY_TIMEOUT_S),
    })
    expect(script).toMatch(new RegExp(`^DLQ_SUFFIX="${deadLetterName('')}"$`, 'm'))
    expect([app.SQS_CHATS_QUEUE, app.SQS_MESSAGES_QUEUE]).toEqual([
      defaults.SQS_CHATS_QUEUE,
      defaults.SQS_MESSAGES_QUEUE,
    ])
    expect([app.SQS_MAX_RECEIVES, app.SQS_VISIBILITY_TIMEOUT_S]).toEqual([
      defaults.SQS_MAX_RECEIVES,
      defaults.SQS_VISIBILITY_TIMEOUT_S,
    ])
  })

  describe('run against a recording awslocal', () => {
    let dir: string
    let calls: string[][]

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'localstack-init-'))
      const log = join(dir, 'calls.jsonl')
      writeFileSync(
        join(dir, 'awslocal'),
        `#!/usr/bin/env node
const args = process.argv.slice(2)
require('node:fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify(args) + '\\n')
const name = args[args.indexOf('--queue-name') + 1]
if (args[1] === 'create-queue') console.log('http://localstack:4566/queue/us-east-1/000000000000/' + name)
if (args[1] === 'get-queue-attributes') console.log('arn:aws:sqs:us-east-1:000000000000:' + args[args.indexOf('--queue-url') + 1].split('/').pop())
`,
      )
      chmodSync(join(dir, 'awslocal'), 0o755)
      execFileSync('bash', [join(REPO_ROOT, INIT_SCRIPT)], {
        env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir },
        stdio: 'pipe',
      })
      calls = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
    })

    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    const attributesOf = (queue: string) => {
      const call = calls.find(
        (args) => args[1] === 'create-queue' && args[args.indexOf('--queue-name') + 1] === queue,
      )
      if (!call) throw new Error(`the script does not create ${queue}`)
      const raw = call[call.indexOf('--attributes') + 1]!
      return raw.startsWith('{')
        ? JSON.parse(raw)
        : Object.fromEntries(raw.split(',').map((kv) => kv.split('=')))
    }

    it.each([defaults.SQS_CHATS_QUEUE, defaults.SQS_MESSAGES_QUEUE])(
      'creates %s with a redrive policy to its dead-letter queue',
      (queue) => {
        const attributes = attributesOf(queue)
        const dlq = deadLetterName(queue)

        expect(calls.findIndex((args) => args.includes(dlq))).toBeLessThan(
          calls.findIndex((args) => args.includes(queue)),
        )
        expect(attributesOf(dlq)).toEqual({ MessageRetentionPeriod: '1209600' })
        expect(attributes.VisibilityTimeout).toBe(String(defaults.SQS_VISIBILITY_TIMEOUT_S))
        expect(JSON.parse(attributes.RedrivePolicy)).toEqual({
          deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${dlq}`,
          maxReceiveCount: String(defaults.SQS_MAX_RECEIVES),
        })
      },
    )
  })
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
