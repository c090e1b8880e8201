/**
 * A Map that holds at most `limit` entries: setting a new key past it drops the oldest. For
 * what a process keeps of values that never change once they exist (a chat's id, say).
 *
 * @example const known = new BoundedMap<string, number>(10_000)
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #limit: number

  constructor(limit: number) {
    super()
    this.#limit = limit
  }

  override set(key: K, value: V): this {
    if (this.size >= this.#limit && !this.has(key)) this.delete(this.keys().next().value!)
    return super.set(key, value)
  }
}
