// The committed src/api/schema.d.ts must be what openapi-typescript makes of
// the inbox's OpenAPI document today: run `npm run gen:types` after changing
// the API.
import { readFileSync } from 'node:fs'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import { expect, test } from 'vitest'

const spec = new URL('../../../services/inbox/internal/api/openapi.json', import.meta.url)
const committed = new URL('../src/api/schema.d.ts', import.meta.url)

test('schema.d.ts matches openapi.json (npm run gen:types)', async () => {
  const fresh = COMMENT_HEADER + astToString(await openapiTS(spec, { silent: true }))
  const current = readFileSync(committed, 'utf8')
  // A plain comparison would print 9,000 lines; name the first difference instead.
  if (fresh !== current) {
    const a = fresh.split('\n')
    const b = current.split('\n')
    let i = 0
    while (i < a.length && a[i] === b[i]) i++
    expect.fail(
      `src/api/schema.d.ts is out of date at line ${i + 1}: expected ${JSON.stringify(a[i])}, found ${JSON.stringify(b[i])}; run npm run gen:types`,
    )
  }
  expect(current).toBe(fresh)
})
