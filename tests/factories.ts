import { expect } from 'vitest'
import * as v from 'valibot'

/** Asserts that a response body matches the schema the OpenAPI description publishes for it. */
export const expectShape = <S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> => {
  const result = v.safeParse(schema, value)
  expect(result.issues?.map((issue) => `${issue.path?.map((p) => p.key).join('.')}: ${issue.message}`) ?? []).toEqual([])
  return result.output as v.InferOutput<S>
}

/** A JSON request for `app.request()`. */
export const json = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
})

/** An application name unique to the test. */
export const anAppName = () => `app ${Math.random().toString(36).slice(2, 8)}`
