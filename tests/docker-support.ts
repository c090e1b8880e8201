import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

/** The repository root, with a trailing slash. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))

export const readRepoFile = (path: string) => readFileSync(`${REPO_ROOT}${path}`, 'utf8')

/** True in a git checkout with git installed (not inside the image, whose context has no .git). */
export const isGitCheckout = (() => {
  if (!existsSync(`${REPO_ROOT}.git`)) return false
  try {
    execFileSync('git', ['rev-parse', '--git-dir'], { cwd: REPO_ROOT, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** `git ls-files -s` rows of tracked files under a path: mode and path. */
export const gitFileModes = (path: string): Array<{ mode: string; path: string }> =>
  execFileSync('git', ['ls-files', '-s', '-z', '--', path], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean)
    .map((row) => {
      const [meta, file] = row.split('\t') as [string, string]
      return { mode: meta.split(' ')[0]!, path: file }
    })

export interface ComposeService {
  image?: string
  build?: string | { context: string; target?: string; dockerfile?: string }
  command?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  depends_on?: string[] | Record<string, { condition?: string }>
  healthcheck?: { test: string | string[]; disable?: boolean }
  volumes?: Array<string | { type?: string; source?: string; target: string }>
  ports?: Array<string | number | { target: number; published?: string | number }>
  profiles?: string[]
  mem_limit?: string | number
  deploy?: { resources?: { limits?: { memory?: string } } }
}

export interface ComposeFile {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

/** docker-compose.yml as Compose reads it (merge keys `<<:` expanded). */
export const loadCompose = (): ComposeFile => parse(readRepoFile('docker-compose.yml'), { merge: true })

/** A service's environment as a map, whichever of the two Compose forms it uses. */
export const environmentOf = (service: ComposeService): Record<string, string> => {
  const env = service.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((item) => {
        const at = item.indexOf('=')
        return at < 0 ? [item, ''] : [item.slice(0, at), item.slice(at + 1)]
      }),
    )
  }
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, value == null ? '' : String(value)]),
  )
}

/** The healthcheck command as one string, whatever its form. */
export const healthcheckText = (service: ComposeService) => {
  const test = service.healthcheck?.test
  return Array.isArray(test) ? test.join(' ') : (test ?? '')
}

/** Parses KEY=value lines (dotenv), skipping blank lines and comments. */
export const parseDotenv = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => {
        const at = line.indexOf('=')
        if (at < 1) throw new Error(`not a KEY=value line: ${line}`)
        return [line.slice(0, at).trim(), line.slice(at + 1).trim()]
      }),
  )
