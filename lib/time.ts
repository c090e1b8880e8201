/** ISO 8601 UTC with milliseconds, the contract's timestamp format. */
export const toIso = (date: Date): string => date.toISOString()

export type Clock = () => Date

export const systemClock: Clock = () => new Date()
