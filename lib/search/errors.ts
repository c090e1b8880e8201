import { errors as esErrors } from '@elastic/elasticsearch'

/** The engine's error type (`resource_already_exists_exception`, …), or its HTTP status. */
export const errorType = (error: unknown) =>
  error instanceof esErrors.ResponseError
    ? ((error.body as { error?: { type?: string } } | undefined)?.error?.type ?? String(error.statusCode))
    : undefined

/** True when the engine could not be reached or is overloaded, rather than rejecting the request. */
export const isUnavailable = (error: unknown) =>
  error instanceof esErrors.ConnectionError ||
  error instanceof esErrors.TimeoutError ||
  error instanceof esErrors.NoLivingConnectionsError ||
  (error instanceof esErrors.ResponseError && (error.statusCode === 429 || (error.statusCode ?? 0) >= 500))
