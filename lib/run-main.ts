import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { ConfigError } from './config.ts'

/** True when the module at `moduleUrl` is the file Node was started with, not an import of it. */
const isEntryPoint = (moduleUrl: string) => {
  try {
    // Node resolves symlinks in the entry's module URL, so compare real paths.
    return pathToFileURL(realpathSync(process.argv[1] ?? '')).href === moduleUrl
  } catch {
    return false
  }
}

/**
 * Runs a command-line entry's `main` when its module is the one Node was started with. A
 * ConfigError stops the process with exit code 78 (EX_CONFIG) and the message naming each
 * malformed variable; any other error prints `describe(error)` (else its stack) and exits 1.
 *
 * @example runMain(import.meta.url, main)
 */
export const runMain = (
  moduleUrl: string,
  main: () => Promise<unknown>,
  describe: (error: unknown) => string | undefined = () => undefined,
) => {
  if (!isEntryPoint(moduleUrl)) return
  main().catch((error: unknown) => {
    const isConfig = error instanceof ConfigError
    const message = isConfig
      ? error.message
      : (describe(error) ?? (error instanceof Error ? (error.stack ?? error.message) : String(error)))
    process.stderr.write(`${message}\n`)
    process.exit(isConfig ? 78 : 1)
  })
}
