export type Clock = () => Date

export const systemClock: Clock = () => new Date()

/**
 * A DATETIME(3) column's text as MySQL sends it ('2026-12-01 11:00:00.101', in UTC: the pool
 * writes Dates with timezone 'Z') in ISO 8601, as `Date#toISOString` gives it
 * ('2026-12-01T11:00:00.101Z'), without building a Date. Any other shape goes through Date.
 */
export const isoFromDatetime = (text: string): string =>
  text.length === 23 && text.charCodeAt(10) === 32
    ? `${text.slice(0, 10)}T${text.slice(11)}Z`
    : new Date(`${text.replace(' ', 'T')}Z`).toISOString()
