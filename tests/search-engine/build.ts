// Builds the engine (Main.java against pom.xml's classpath, resolved by Maven) once per source
// hash, cached under target/build-<hash>/.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { MIN_JAVA } from './jdk.ts'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TARGET = path.join(HERE, 'target')
const MAIN_SOURCE = path.join(HERE, 'src', 'main', 'java', 'dev', 'searchengine', 'Main.java')
const POM = path.join(HERE, 'pom.xml')

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

export interface Build {
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
