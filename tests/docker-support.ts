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
  pull_policy?: string
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

export interface DockerInstruction {
  keyword: string
  args: string
}

export interface DockerStage {
  name: string
  from: string
  instructions: DockerInstruction[]
}

/**
 * Reads a Dockerfile into its stages: continuation lines joined, comments dropped, `${ARG}` in FROM
 * replaced by the global ARG defaults.
 */
export const parseDockerfile = (text: string): DockerStage[] => {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!pending && (line === '' || line.startsWith('#'))) continue
    if (pending && line.startsWith('#')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `
      continue
    }
    logical.push(`${pending}${line}`.trim())
    pending = ''
  }
  const globalArgs: Record<string, string> = {}
  const stages: DockerStage[] = []
  for (const line of logical) {
    const [, keyword = '', args = ''] = line.match(/^(\S+)\s*(.*)$/) ?? []
    const upper = keyword.toUpperCase()
    if (upper === 'FROM') {
      const resolved = args.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs[name] ?? '')
      const [from = '', , name] = resolved.split(/\s+/)
      stages.push({ name: name ?? String(stages.length), from, instructions: [] })
    } else if (stages.length === 0) {
      const [, name, value] = args.match(/^(\w+)=(.*)$/) ?? []
      if (upper === 'ARG' && name) globalArgs[name] = value ?? ''
    } else {
      stages.at(-1)!.instructions.push({ keyword: upper, args })
    }
  }
  return stages
}

/** The instructions of a stage with this keyword. */
export const instructionsOf = (stage: DockerStage, keyword: string) =>
  stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.args)

/** The stages a stage builds on, nearest first, itself included (FROM <stage>). */
export const stageChain = (stages: DockerStage[], name: string): DockerStage[] => {
  const stage = stages.find((candidate) => candidate.name === name)
  if (!stage) return []
  return [...stageChain(stages, stage.from), stage]
}

/** True when a .dockerignore excludes a path (patterns with `*`, `**` and `!`; last match wins). */
export const isDockerIgnored = (patterns: string[], path: string) => {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '<globstar/>')
        .replace(/\*\*/g, '.*')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/<globstar\/>/g, '(?:.*/)?')}(?:/.*)?$`,
    )
  let ignored = false
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!')
    if (toRegExp(negated ? pattern.slice(1) : pattern).test(path)) ignored = !negated
  }
  return ignored
}

/** The patterns of .dockerignore. */
export const dockerignorePatterns = () =>
  readRepoFile('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
