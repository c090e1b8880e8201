/** A keyset page: `limit + 1` rows were read, so whether another page exists is known for free. */
export const toPage = <Row, Out extends { number: number }>(
  rows: Row[],
  limit: number,
  map: (row: Row) => Out,
) => {
  const data = rows.slice(0, limit).map(map)
  return { data, next_after: rows.length > limit ? data[data.length - 1]!.number : null }
}
