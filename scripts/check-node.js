// Runs before `npm start`, `npm test` and `npm run local` (their `pre` hooks), on whatever Node
// the machine has: plain JavaScript, so that an older Node stops here with one line naming the
// version to install, instead of failing on the first `.ts` import (ERR_UNKNOWN_FILE_EXTENSION).
// `npm ci` is stopped earlier by `engine-strict` in .npmrc. The range is package.json's `engines`.
import { readFileSync } from 'node:fs'

const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
const [required] = engines.node.match(/\d+/)
const major = process.versions.node.split('.')[0]

if (major !== required) {
  process.stderr.write(
    `chat-system needs Node ${required} (package.json engines: ${engines.node}); this is Node ${process.version}. Install Node ${required} LTS and run again.\n`,
  )
  process.exit(1)
}
