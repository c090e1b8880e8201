import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from './docker-support.ts'

// An older Node than the project's (Node 20 is /usr/bin/node on the development machine; none is
// inside the image, where this has nothing to run).
const OLD_NODE = process.env.OLD_NODE ?? '/usr/bin/node'
const oldMajor = existsSync(OLD_NODE)
  ? Number(spawnSync(OLD_NODE, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout)
  : 0
const npmCli = join(dirname(OLD_NODE), '../lib/node_modules/npm/bin/npm-cli.js')
const hasOldNode = oldMajor > 0 && oldMajor < 24 && existsSync(npmCli)

/** Runs npm as the old Node runs it: `node` on PATH is the old one too. */
const npm = (args: string[], cwd: string) => {
  const result = spawnSync(OLD_NODE, [npmCli, ...args], {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: `${dirname(OLD_NODE)}:/usr/bin:/bin`,
      HOME: process.env.HOME ?? tmpdir(),
      npm_config_update_notifier: 'false',
    },
    timeout: 60_000,
  })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

describe.skipIf(!hasOldNode)(`on Node ${oldMajor}`, () => {
  it.each(['start', 'test', 'run local'])(
    '`npm %s` stops at once with one line naming Node 24',
    (command) => {
      const { status, output } = npm(command.split(' '), REPO_ROOT)

      expect(status).not.toBe(0)
      expect(output).toMatch(
        /^chat-system needs Node 24 \(package.json engines: >=24 <25\); this is Node v\d+/m,
      )
      expect(output).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
    },
  )

  it('`npm ci` refuses to install, and leaves node_modules as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'old-node-ci-'))
    try {
      for (const file of ['package.json', 'package-lock.json', '.npmrc'])
        copyFileSync(join(REPO_ROOT, file), join(dir, file))

      const { status, output } = npm(['ci', '--no-audit', '--no-fund'], dir)

      expect(status).not.toBe(0)
      expect(output).toContain('EBADENGINE')
      expect(output).toMatch(/Required: \{"node":">=24 <25"\}/)
      expect(existsSync(join(dir, 'node_modules')) ? readdirSync(join(dir, 'node_modules')) : []).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
