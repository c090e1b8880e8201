/** A keyset page: `limit + 1` rows were read, so whether another page exists is known for free. */
export const toPage = <Row extends { number: number }, Out>(
  rows: Row[],
  limit: number,
  map: (row: Row) => Out,
) => {
  const hasMore = rows.length > limit
  const data = rows.slice(0, limit)
  return { data: data.map(map), next_after: hasMore ? data[data.length - 1]!.number : null }
}
