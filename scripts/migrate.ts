// `npm run db:migrate`: applies the committed drizzle-kit migrations to DATABASE_URL.
import { ConfigError, loadConfig } from '../lib/config.ts'
import { migrateDatabase } from '../lib/db.ts'

try {
  const config = loadConfig(process.env)
  await migrateDatabase(config.DATABASE_URL)
  process.stdout.write(`migrated ${new URL(config.DATABASE_URL).pathname.slice(1)}\n`)
} catch (error) {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : String((error as Error).stack ?? error)}\n`,
  )
  process.exit(error instanceof ConfigError ? 78 : 1)
}
