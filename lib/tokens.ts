import { randomBytes } from 'node:crypto'

/** A new application token: 192 bits from the CSPRNG, 32 URL-safe characters. */
export const newToken = (): string => randomBytes(24).toString('base64url')
