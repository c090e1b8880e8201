// Finds a JDK (>= 21) to build and run the engine: SEARCH_ENGINE_JAVA_HOME, else the newest found.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export const MIN_JAVA = 21

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
