/** The MySQL server under test: TEST_DATABASE_URL, else DATABASE_URL's server, else local root. */
export const serverUrl = () => {
  const url = new URL(
    process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/',
  )
  url.pathname = '/'
  return url.toString()
}
