// Starts a real Lucene search engine for tests: one embedded OpenSearch node (Java, see Main.java)
// behind the Elasticsearch compatibility proxy (compat-proxy.ts), so that the official
// @elastic/elasticsearch 9.x client can talk to it.
//
//   import { startSearchEngine } from './tests/search-engine/engine.ts';
//   const engine = await startSearchEngine({ log: (l) => console.error(l) });
//   const client = new Client({ node: engine.url });
//   ...
//   await engine.stop();
//
// CLI: node --experimental-strip-types tests/search-engine/start.ts   (or: npx tsx ...)
//      prints SEARCH_ENGINE_URL=http://127.0.0.1:PORT and runs until SIGINT/SIGTERM.
//
// Environment: SEARCH_ENGINE_JAVA_HOME (JDK >= 21), SEARCH_ENGINE_TIMEOUT_MS (default 180000),
// SEARCH_ENGINE_HEAP (default 512m), SEARCH_ENGINE_JAVA_OPTS (extra JVM flags, appended),
// SEARCH_ENGINE_MVN (default "mvn"; MAVEN_OPTS is honoured, e.g. -Dmaven.repo.local=...).
// Only node: builtins, erasable TypeScript syntax (Node >= 22.6 type stripping and tsx).

import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { ensureBuilt } from './build.ts'
import { createCompatProxy } from './compat-proxy.ts'
import { findJavaHome } from './jdk.ts'

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

const MAIN_CLASS = 'dev.searchengine.Main'

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
  // A start that failed: no JVM and no data directory left behind.
  const abort = async () => {
    child.kill('SIGKILL')
    await exited
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
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
    await abort()
    throw err
  }

  const directUrl = `http://127.0.0.1:${httpPort}`
  let proxy: Awaited<ReturnType<typeof createCompatProxy>>
  try {
    proxy = await createCompatProxy(directUrl)
  } catch (err) {
    await abort()
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
