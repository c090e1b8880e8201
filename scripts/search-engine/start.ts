// Starts a real Lucene search engine for tests: one embedded OpenSearch node (Java, see Main.java)
// behind the Elasticsearch compatibility proxy (compat-proxy.ts), so that the official
// @elastic/elasticsearch 9.x client can talk to it.
//
//   import { startSearchEngine } from './scripts/search-engine/start.ts';
//   const engine = await startSearchEngine({ log: (l) => console.error(l) });
//   const client = new Client({ node: engine.url });
//   ...
//   await engine.stop();
//
// CLI: node --experimental-strip-types scripts/search-engine/start.ts   (or: npx tsx ...)
//      prints SEARCH_ENGINE_URL=http://127.0.0.1:PORT and runs until SIGINT/SIGTERM.
//
// Environment: SEARCH_ENGINE_JAVA_HOME (JDK >= 21), SEARCH_ENGINE_TIMEOUT_MS (default 180000),
// SEARCH_ENGINE_HEAP (default 512m), SEARCH_ENGINE_JAVA_OPTS (extra JVM flags, appended),
// SEARCH_ENGINE_MVN (default "mvn"; MAVEN_OPTS is honoured, e.g. -Dmaven.repo.local=...).
// Only node: builtins, erasable TypeScript syntax (Node >= 22.6 type stripping and tsx).

import type { ChildProcess } from 'node:child_process'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createCompatProxy } from './compat-proxy.ts'

export interface SearchEngineOptions {
  /** Receives build output and the JVM's log lines. Default: discard. */
  log?: (line: string) => void
  /** How long to wait for the node to become ready, in ms. Default 180000 (env SEARCH_ENGINE_TIMEOUT_MS). */
  timeoutMs?: number
  /** JDK (>= 21) to use. Default: env SEARCH_ENGINE_JAVA_HOME, else the newest JDK >= 21 found. */
  javaHome?: string
  /** JVM heap (-Xms/-Xmx). Default "512m" (env SEARCH_ENGINE_HEAP). */
  heap?: string
}

export interface SearchEngine {
  /** URL of the compatibility proxy; give it to `new Client({ node: url })`. */
  url: string
  /** URL of the OpenSearch node itself (no compatibility layer). */
  directUrl: string
  stop: () => Promise<void>
}

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TARGET = path.join(HERE, 'target')
const MAIN_SOURCE = path.join(HERE, 'src', 'main', 'java', 'dev', 'searchengine', 'Main.java')
const POM = path.join(HERE, 'pom.xml')
const MAIN_CLASS = 'dev.searchengine.Main'
const MIN_JAVA = 21

// ---------------------------------------------------------------------------------------------
// JDK discovery

function javaFeatureVersion(javaHome: string): number | undefined {
  try {
    const release = fs.readFileSync(path.join(javaHome, 'release'), 'utf8')
    const m = /^JAVA_VERSION="?(\d+)(?:\.(\d+))?/m.exec(release)
    if (m) return m[1] === '1' && m[2] ? Number(m[2]) : Number(m[1])
  } catch {
    // no release file: ask the binary
  }
  const r = spawnSync(path.join(javaHome, 'bin', 'java'), ['-version'], { encoding: 'utf8' })
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`)
  if (!m) return undefined
  return m[1] === '1' && m[2] ? Number(m[2]) : Number(m[1])
}

function isJdk(javaHome: string): boolean {
  return (
    fs.existsSync(path.join(javaHome, 'bin', 'java')) && fs.existsSync(path.join(javaHome, 'bin', 'javac'))
  )
}

export function findJavaHome(explicit?: string): string {
  const wanted = explicit ?? process.env.SEARCH_ENGINE_JAVA_HOME
  if (wanted) {
    const v = javaFeatureVersion(wanted)
    if (!isJdk(wanted) || v === undefined || v < MIN_JAVA) {
      throw new Error(
        `search-engine: ${wanted} is not a JDK >= ${MIN_JAVA} (found version ${v ?? 'unknown'})`,
      )
    }
    return wanted
  }
  const candidates: string[] = []
  if (process.env.JAVA_HOME) candidates.push(process.env.JAVA_HOME)
  for (const root of ['/usr/lib/jvm', '/usr/java', '/opt/java', '/Library/Java/JavaVirtualMachines']) {
    let entries: string[] = []
    try {
      entries = fs.readdirSync(root)
    } catch {
      continue
    }
    for (const e of entries) {
      const home = path.join(root, e)
      candidates.push(home, path.join(home, 'Contents', 'Home'))
    }
  }
  let best: { home: string; version: number } | undefined
  for (const home of candidates) {
    if (!isJdk(home)) continue
    const version = javaFeatureVersion(home)
    if (version === undefined || version < MIN_JAVA) continue
    // Prefer the newest; on a tie prefer Temurin.
    if (!best || version > best.version || (version === best.version && /temurin/i.test(home))) {
      best = { home: fs.realpathSync(home), version }
    }
  }
  if (!best) {
    throw new Error(
      `search-engine: no JDK >= ${MIN_JAVA} found (looked at $JAVA_HOME and /usr/lib/jvm). ` +
        'Install one (e.g. apt-get install temurin-25-jdk / openjdk-21-jdk) or set SEARCH_ENGINE_JAVA_HOME.',
    )
  }
  return best.home
}

// ---------------------------------------------------------------------------------------------
// Build (cached under target/build-<hash>/)

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void): void {
  log(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: HERE, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  for (const line of `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')) if (line.trim()) log(line)
  if (r.error) throw new Error(`search-engine: cannot run ${cmd}: ${r.error.message}`)
  if (r.status !== 0) {
    throw new Error(
      `search-engine: ${cmd} ${args.join(' ')} failed with exit code ${r.status}\n${r.stdout ?? ''}${r.stderr ?? ''}`,
    )
  }
}

interface Build {
  classpath: string
}

function readBuild(dir: string): Build | undefined {
  try {
    const classpath = fs.readFileSync(path.join(dir, 'classpath.txt'), 'utf8').trim()
    if (!fs.existsSync(path.join(dir, 'classes', 'dev', 'searchengine', 'Main.class'))) return undefined
    // The Maven repository may have been wiped since the build: re-resolve then.
    if (!classpath.split(path.delimiter).every((jar) => fs.existsSync(jar))) return undefined
    return { classpath: `${path.join(dir, 'classes')}${path.delimiter}${classpath}` }
  } catch {
    return undefined
  }
}

export function ensureBuilt(javaHome: string, log: (line: string) => void = () => {}): Build {
  const hash = createHash('sha256')
    .update(fs.readFileSync(POM))
    .update(fs.readFileSync(MAIN_SOURCE))
    .digest('hex')
    .slice(0, 16)
  const dir = path.join(TARGET, `build-${hash}`)
  const cached = readBuild(dir)
  if (cached) return cached

  // Build into a private temp dir, then rename: concurrent builders cannot see half a build.
  fs.mkdirSync(TARGET, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(TARGET, 'tmp-'))
  try {
    const env = { ...process.env, JAVA_HOME: javaHome }
    const mvn = process.env.SEARCH_ENGINE_MVN ?? 'mvn'
    const cpFile = path.join(tmp, 'classpath.txt')
    run(
      mvn,
      [
        '-B',
        '-q',
        '-f',
        POM,
        'dependency:build-classpath',
        '-Dmdep.includeScope=runtime',
        `-Dmdep.outputFile=${cpFile}`,
      ],
      env,
      log,
    )
    const classpath = fs.readFileSync(cpFile, 'utf8').trim()
    run(
      path.join(javaHome, 'bin', 'javac'),
      [
        '--release',
        String(MIN_JAVA),
        '-nowarn',
        '-d',
        path.join(tmp, 'classes'),
        '-cp',
        classpath,
        MAIN_SOURCE,
      ],
      env,
      log,
    )
    try {
      fs.renameSync(tmp, dir)
    } catch (err) {
      // Another process won the race (use its build), or `dir` is a stale build (e.g. its jars
      // were removed from the Maven repository): replace it.
      if (!readBuild(dir)) {
        const stale = `${dir}.stale-${process.pid}-${Date.now()}`
        try {
          fs.renameSync(dir, stale)
        } catch {
          throw err
        }
        fs.rmSync(stale, { recursive: true, force: true })
        fs.renameSync(tmp, dir)
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  const built = readBuild(dir)
  if (!built) throw new Error(`search-engine: build in ${dir} is incomplete`)
  return built
}

// ---------------------------------------------------------------------------------------------
// Process management

const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Last resort when the Node process exits without stop(): SIGTERM lets the JVM close the node
  // and delete its data dir (-Dsearch.engine.cleanOnExit). If Node is killed hard, the JVM still
  // notices: its stdin pipe closes and Main.java shuts down the same way on stdin EOF.
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGTERM')
      } catch {
        // already gone
      }
    }
  })
}

export async function startSearchEngine(opts: SearchEngineOptions = {}): Promise<SearchEngine> {
  const log = opts.log ?? (() => {})
  const timeoutMs = opts.timeoutMs ?? Number(process.env.SEARCH_ENGINE_TIMEOUT_MS ?? 180_000)
  const heap = opts.heap ?? process.env.SEARCH_ENGINE_HEAP ?? '512m'
  const javaHome = findJavaHome(opts.javaHome)
  const started = Date.now()
  const { classpath } = ensureBuilt(javaHome, log)
  log(`search-engine: build ready after ${Date.now() - started} ms (java: ${javaHome})`)

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'search-engine-'))
  const child = spawn(
    path.join(javaHome, 'bin', 'java'),
    [
      `-Xms${heap}`,
      `-Xmx${heap}`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Xss1m',
      '--enable-native-access=ALL-UNNAMED',
      '-Dsearch.engine.cleanOnExit=true',
      '-Dfile.encoding=UTF-8',
      '-Djava.awt.headless=true',
      '-Dlog4j2.disable.jmx=true',
      ...(process.env.SEARCH_ENGINE_JAVA_OPTS ?? '').split(/\s+/).filter(Boolean),
      '-cp',
      classpath,
      MAIN_CLASS,
      '0',
      dataDir,
    ],
    { cwd: dataDir, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, JAVA_HOME: javaHome } },
  )
  liveChildren.add(child)
  installExitHook()

  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      liveChildren.delete(child)
      resolve()
    })
  })
  const tail: string[] = []
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line)
    if (tail.length > 60) tail.shift()
    log(line)
  })

  let httpPort: number
  try {
    httpPort = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`search-engine: not ready after ${timeoutMs} ms`))
      }, timeoutMs)
      const rl = readline.createInterface({ input: child.stdout! })
      rl.on('line', (line) => {
        const m = /^READY (\d+)$/.exec(line.trim())
        if (m) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        } else {
          log(line)
        }
      })
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new Error(`search-engine: cannot start java: ${err.message}`))
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(
          new Error(
            `search-engine: JVM exited before it was ready (code ${code}, signal ${signal})\n${tail.join('\n')}`,
          ),
        )
      })
    })
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    fs.rmSync(dataDir, { recursive: true, force: true })
    throw err
  }

  const directUrl = `http://127.0.0.1:${httpPort}`
  let proxy: Awaited<ReturnType<typeof createCompatProxy>>
  try {
    proxy = await createCompatProxy(directUrl)
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    fs.rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
  log(`search-engine: ready after ${Date.now() - started} ms: ${proxy.url} -> ${directUrl}`)

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await proxy.close()
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(killTimer)
      }
      fs.rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopping
  }

  return { url: proxy.url, directUrl, stop }
}

// ---------------------------------------------------------------------------------------------
// CLI

function isMain(): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  try {
    return fs.realpathSync(entry) === fs.realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isMain()) {
  const verbose = process.argv.includes('--verbose') || process.argv.includes('-v')
  const t0 = Date.now()
  startSearchEngine({ log: verbose ? (line) => process.stderr.write(`${line}\n`) : undefined }).then(
    (engine) => {
      process.stderr.write(
        `search-engine: ready in ${Date.now() - t0} ms (OpenSearch at ${engine.directUrl})\n`,
      )
      process.stdout.write(`SEARCH_ENGINE_URL=${engine.url}\n`)
      const keepAlive = setInterval(() => {}, 1 << 30)
      const shutdown = (): void => {
        clearInterval(keepAlive)
        engine.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.once('SIGINT', shutdown)
      process.once('SIGTERM', shutdown)
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
