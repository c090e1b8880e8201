// `npm run db:migrate`: applies the committed drizzle-kit migrations to DATABASE_URL.
import { loadConfig } from '../lib/config.ts'
import { migrateDatabase } from '../lib/db.ts'
import { runMain } from '../lib/run-main.ts'

runMain(import.meta.url, async () => {
  const config = loadConfig(process.env)
  await migrateDatabase(config.DATABASE_URL)
  process.stdout.write(`migrated ${new URL(config.DATABASE_URL).pathname.slice(1)}\n`)
})
