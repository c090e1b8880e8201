import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import mysql from 'mysql2/promise'
import { describe, expect, inject, it } from 'vitest'
import {
  dockerignorePatterns,
  instructionsOf,
  isDockerIgnored,
  isGitCheckout,
  parseDockerfile,
  REPO_ROOT,
  readRepoFile,
  stageChain,
} from './docker-support.ts'
import { freePort } from './processes.ts'
import { runDatabasePrefix, runNames } from './run-resources.ts'

const stages = parseDockerfile(readRepoFile('Dockerfile'))
const runtime = stages.at(-1)!
const buildStages = stages.slice(0, -1)
const runSteps = buildStages.flatMap((stage) =>
  instructionsOf(stage, 'RUN').map((command) => ({ stage, command })),
)
const pkg = JSON.parse(readRepoFile('package.json'))

/** `COPY --from=stage src… dest` of a stage: its flags, sources and destination. */
const copiesOf = (stage: (typeof stages)[number]) =>
  instructionsOf(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/)
    const flags = Object.fromEntries(
      words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=') as [string, string]),
    )
    const paths = words.filter((w) => !w.startsWith('--'))
    return { from: flags.from, sources: paths.slice(0, -1), destination: paths.at(-1)! }
  })

const workdirOf = (name: string) =>
  stageChain(stages, name)
    .flatMap((stage) => instructionsOf(stage, 'WORKDIR'))
    .at(-1) ?? '/'

/** A HEALTHCHECK or CMD in exec form: its argv. */
const execForm = (args: string) => JSON.parse(args.slice(args.indexOf('['))) as string[]

describe('Dockerfile', () => {
  it('builds every stage on a pinned Node 24 bookworm-slim image', () => {
    const bases = stages.filter((stage) => !stages.some((other) => other.name === stage.from))

    expect(bases.length).toBeGreaterThan(0)
    for (const stage of bases) expect(stage.from, stage.name).toMatch(/^node:24\.\d+\.\d+-bookworm-slim$/)
  })

  it('installs with npm ci, type-checks, and prunes to production dependencies', () => {
    const commands = runSteps.map((step) => step.command)

    expect(commands.find((c) => /^npm ci\b/.test(c))).toBeDefined()
    expect(commands).toContain('npm run typecheck')
    expect(commands.find((c) => /^npm prune --omit=dev\b/.test(c))).toBeDefined()
    expect(pkg.scripts.typecheck).toBeDefined()
  })

  it('runs the server as a non-root user over root-owned code, in a runtime stage with production dependencies only', () => {
    const copies = copiesOf(runtime)
    const modules = copies.find((copy) => copy.destination.replace(/^\.\//, '') === 'node_modules')!
    const user = instructionsOf(runtime, 'USER').at(-1)

    expect(runtime.name).toBe('runtime')
    expect(user).toBeDefined()
    expect(user).not.toMatch(/^(root|0)(:|$)/)
    expect(instructionsOf(runtime, 'RUN')).toEqual([])
    // COPY's default owner is root: the code and dependencies stay read-only to the server's user.
    for (const copy of instructionsOf(runtime, 'COPY')) expect(copy).not.toMatch(/--chown/)
    expect(instructionsOf(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/)
    expect(modules).toBeDefined()
    const pruned = stageChain(stages, modules.from!)
    expect(pruned.flatMap((stage) => instructionsOf(stage, 'RUN')).at(-1)).toMatch(/^npm prune --omit=dev\b/)
  })

  it('starts the server as `npm start` does, with a healthcheck on /health that needs no curl', () => {
    const cmd = execForm(instructionsOf(runtime, 'CMD').at(-1)!)
    const healthcheck = instructionsOf(runtime, 'HEALTHCHECK').at(-1)!

    expect(cmd).toEqual(pkg.scripts.start.split(' '))
    expect(cmd).toEqual(['node', 'functions/server.ts'])
    expect(healthcheck).toMatch(/--interval=\S+ .*CMD \[/)
    expect(execForm(healthcheck)[0]).toBe('node')
    expect(execForm(healthcheck).join(' ')).toContain('/health')
    expect(instructionsOf(runtime, 'EXPOSE')).toContain('3000')
  })

  it('ignores in its build context what the host built, and keeps what the build and the in-stack tests read', () => {
    const patterns = dockerignorePatterns()

    for (const path of [
      'node_modules',
      'node_modules/hono/package.json',
      '.git',
      'infra/cdk.out/manifest.json',
      'server.log',
      'lib/debug.log',
      'tsconfig.tsbuildinfo',
      'infra/tsconfig.tsbuildinfo',
      '.vscode/settings.json',
      '.idea/workspace.xml',
      'functions/.idea/misc.xml',
      '.env',
      '.env.local',
    ]) {
      expect(isDockerIgnored(patterns, path), path).toBe(true)
    }
    for (const path of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'biome.json',
      'functions/server.ts',
      'lib/config.ts',
      'db/migrations/0000_initial.sql',
      'tests/harness.ts',
      'docker-compose.yml',
      'Dockerfile',
      '.env.example',
      'tests/schemas/compose-spec.json',
      '.npmrc',
      'scripts/check-node.js',
    ]) {
      expect(isDockerIgnored(patterns, path), path).toBe(false)
    }
  })
})

/** Runs a command as a Dockerfile RUN does (`/bin/sh -c`); rejects with its output when it fails. */
const runStep = (command: string, cwd: string, env: NodeJS.ProcessEnv) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`\`${command}\` exited with ${code}:\n${output.slice(-6000)}`)),
    )
  })

const waitForHealth = async (url: string, child: ChildProcess, output: () => string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${output()}`)
    const status = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (response) => response.status,
      () => 0,
    )
    if (status === 200) return
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`GET ${url} did not answer 200 within ${timeoutMs} ms:\n${output()}`)
}

/**
 * The Docker build, rehearsed natively (there is no Docker engine here): the tracked files the
 * build context would hold, the RUN steps of the build stages as the Dockerfile spells them, the
 * runtime stage's COPY --from steps into a fresh directory, and its CMD and HEALTHCHECK there.
 * Inside the image (no .git) the build itself was the rehearsal.
 */
describe.skipIf(!isGitCheckout)('Dockerfile rehearsal', () => {
  it('builds, prunes, leaves the tests out, starts the server from the runtime files only, and answers GET /health', async () => {
    const root = mkdtempSync(join(tmpdir(), 'docker-rehearsal-'))
    const context = join(root, 'app')
    const image = join(root, 'image')
    const unique = randomBytes(4).toString('hex')
    const server = new URL(
      process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/',
    )
    server.pathname = '/'
    const database = new URL(server)
    database.pathname = `/${runDatabasePrefix(inject('runId'))}rehearsal_${unique}`
    // The same Node and npm as this test run; npm may use its cache instead of the network.
    const buildEnv = {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
    }
    let child: ChildProcess | undefined
    try {
      const patterns = dockerignorePatterns()
      const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
        .split('\0')
        .filter((path) => path && existsSync(join(REPO_ROOT, path)) && !isDockerIgnored(patterns, path))
      for (const path of tracked) cpSync(join(REPO_ROOT, path), join(context, path))

      expect(runSteps.length).toBeGreaterThanOrEqual(3)
      for (const { command } of runSteps) await runStep(command, context, buildEnv)

      const runtimeWorkdir = workdirOf(runtime.name)
      for (const copy of copiesOf(runtime)) {
        expect(copy.from, `COPY ${copy.sources.join(' ')} in the runtime stage`).toBeDefined()
        const stageWorkdir = workdirOf(copy.from!)
        for (const source of copy.sources) {
          const destination = copy.destination.startsWith('/')
            ? join(image, relative(runtimeWorkdir, copy.destination))
            : join(image, copy.destination)
          // Docker's rule: a destination ending in / is a folder the source goes into.
          const target = copy.destination.endsWith('/') ? join(destination, basename(source)) : destination
          mkdirSync(dirname(target), { recursive: true })
          cpSync(join(context, relative(stageWorkdir, source)), target, {
            recursive: true,
            verbatimSymlinks: true,
          })
        }
      }
      for (const devOnly of ['typescript', 'vitest', 'aws-cdk-lib', '@biomejs/biome']) {
        expect(existsSync(join(image, 'node_modules', devOnly)), `${devOnly} in the image`).toBe(false)
      }
      expect(existsSync(join(image, 'node_modules/hono')), 'production dependencies in the image').toBe(true)
      const code = readdirSync(image, { recursive: true, encoding: 'utf8' }).filter(
        (path) => !path.startsWith('node_modules'),
      )
      expect(code.filter((path) => path.endsWith('.test.ts'))).toEqual([])
      expect(code).toContain(join('functions', 'create-message', 'app.ts'))

      const port = await freePort()
      const imageEnv = Object.fromEntries(
        instructionsOf(runtime, 'ENV')
          .flatMap((args) => args.split(/\s+/))
          .map((pair) => pair.split('=') as [string, string]),
      )
      const env = {
        PATH: buildEnv.PATH,
        ...imageEnv,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        DATABASE_URL: database.toString(),
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        // Named after the test run, so that the run's teardown deletes them.
        ...runNames(inject('runId'), `rehearsal${unique}`),
        SQS_ENDPOINT: inject('sqsEndpoint'),
        ELASTICSEARCH_URL: inject('elasticsearchUrl'),
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        RUN_WORKERS: 'false',
      }
      const [command, ...args] = execForm(instructionsOf(runtime, 'CMD').at(-1)!)
      const started = spawn(command!, args, { cwd: image, env, stdio: ['ignore', 'pipe', 'pipe'] })
      child = started
      let output = ''
      started.stdout?.on('data', (chunk) => (output += chunk))
      started.stderr?.on('data', (chunk) => (output += chunk))

      await waitForHealth(`http://127.0.0.1:${port}/health`, started, () => output.slice(-6000), 90_000)

      const [probe, ...probeArgs] = execForm(instructionsOf(runtime, 'HEALTHCHECK').at(-1)!)
      expect(() =>
        execFileSync(probe!, probeArgs, { cwd: image, env, stdio: 'pipe', timeout: 10_000 }),
      ).not.toThrow()
    } finally {
      if (child && child.exitCode === null) {
        const exited = new Promise((resolve) => child?.once('exit', resolve))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      const admin = await mysql.createConnection(server.toString()).catch(() => undefined)
      await admin?.query(`DROP DATABASE IF EXISTS \`${database.pathname.slice(1)}\``)
      await admin?.end()
      rmSync(root, { recursive: true, force: true })
    }
  }, 300_000)
})
