// The checks of the admin forms and the mapping of problem+json field
// errors onto their fields.
import { describe, expect, test } from 'vitest'
import { ApiError, type Problem } from '../../src/api/client'
import { bytes, languages, lines, mapProblem, numberOrUndefined, rules, validate } from '../../src/admin/forms'

function problem(p: Partial<Problem>): ApiError {
  return new ApiError({ type: 'about:blank', title: 'Bad Request', status: 400, ...p })
}

describe('rules', () => {
  test('required refuses blank text and empty lists', () => {
    const r = rules.required()
    expect(r('')).toEqual({ key: 'admin.form.required' })
    expect(r('   ')).toEqual({ key: 'admin.form.required' })
    expect(r(undefined)).toEqual({ key: 'admin.form.required' })
    expect(r([])).toEqual({ key: 'admin.form.required' })
    expect(r('x')).toBeNull()
    expect(r(['a'])).toBeNull()
  })

  test('maxBytes counts UTF-8 bytes, as the API does', () => {
    expect(bytes('é')).toBe(2)
    const r = rules.maxBytes(3)
    expect(r('abc')).toBeNull()
    expect(r('aé')).toBeNull()
    expect(r('abé')).toEqual({ key: 'admin.form.max_bytes', params: { n: 3 } })
  })

  test('minChars counts characters and lets an empty value pass', () => {
    const r = rules.minChars(10)
    expect(r('')).toBeNull()
    expect(r('short')).toEqual({ key: 'admin.form.min_chars', params: { n: 10 } })
    expect(r('éééééééééé')).toBeNull()
  })

  test('oneLine refuses line breaks', () => {
    expect(rules.oneLine()('a\nb')).toEqual({ key: 'admin.form.one_line' })
    expect(rules.oneLine()('a b')).toBeNull()
  })

  test('email takes a plain address only', () => {
    const r = rules.email()
    expect(r('ada@example.com')).toBeNull()
    expect(r('')).toBeNull()
    expect(r('ada@example')).toEqual({ key: 'admin.form.email' })
    expect(r('Ada <ada@example.com>')).toEqual({ key: 'admin.form.email' })
  })

  test('integer and positive check ranges', () => {
    expect(rules.integer(5, 3600)('30')).toBeNull()
    expect(rules.integer(5, 3600)('4')).toEqual({ key: 'admin.form.integer', params: { min: 5, max: 3600 } })
    expect(rules.integer(5, 3600)('7.5')).not.toBeNull()
    expect(rules.integer(5, 3600)('')).toBeNull()
    expect(rules.positive(8760)('0')).toEqual({ key: 'admin.form.positive', params: { max: 8760 } })
    expect(rules.positive(8760)('0,5')).toBeNull()
    expect(rules.positive(8760)('8761')).not.toBeNull()
    expect(rules.positive(8760)('abc')).not.toBeNull()
  })

  test('url wants an absolute http(s) address without user information', () => {
    const r = rules.url()
    expect(r('https://bot.example.com/hook')).toBeNull()
    expect(r('ftp://example.com')).toEqual({ key: 'admin.form.url' })
    expect(r('https://user:pw@example.com')).toEqual({ key: 'admin.form.url' })
    expect(r('/relative')).toEqual({ key: 'admin.form.url' })
  })

  test('each names the first item that fails; pattern lets empty values pass', () => {
    const r = rules.each(rules.pattern(/^\+[1-9][0-9]{6,14}$/, 'sms.number.invalid'))
    expect(r(['+33612345678', '0612345678'])).toEqual({ key: 'sms.number.invalid', item: 2 })
    expect(r(['+33612345678'])).toBeNull()
    expect(rules.maxItems(1)(['a', 'b'])).toEqual({ key: 'admin.form.max_items', params: { n: 1 } })
  })
})

test('validate keeps the first issue of each field', () => {
  const issues = validate(
    { name: '', capacity: '500', email: 'ok@example.com' },
    { name: [rules.required(), rules.maxBytes(1)], capacity: [rules.integer(0, 100)], email: [rules.required(), rules.email()] },
  )
  expect(issues).toEqual({
    name: { key: 'admin.form.required' },
    capacity: { key: 'admin.form.integer', params: { min: 0, max: 100 } },
  })
})

describe('mapProblem', () => {
  const known = ['name', 'imap', 'imap.host', 'numbers', 'weights.chat']

  test('puts each field error on its field, the longest known prefix winning', () => {
    const v = mapProblem(
      problem({
        errors: [
          { field: 'name', reason: 'is taken' },
          { field: 'imap.host', reason: 'is required' },
          { field: 'imap.port', reason: 'must be 1 to 65535' },
          { field: 'weights.chat', reason: 'must be at least 0.01' },
        ],
      }),
      known,
    )
    expect(v.fields).toEqual({
      name: 'is taken',
      'imap.host': 'is required',
      imap: 'must be 1 to 65535',
      'weights.chat': 'must be at least 0.01',
    })
    expect(v.general).toEqual([])
  })

  test('says which item of a list is wrong, and joins two errors of one field', () => {
    const v = mapProblem(
      problem({
        errors: [
          { field: 'numbers[2]', reason: 'belongs to another account' },
          { field: 'numbers[0]', reason: 'is not E.164' },
        ],
      }),
      known,
      (n, r) => `line ${n}: ${r}`,
    )
    expect(v.fields).toEqual({ numbers: 'line 3: belongs to another account; line 1: is not E.164' })
  })

  test('errors that name no field of the form, and bare problems, go to general', () => {
    const v = mapProblem(problem({ errors: [{ field: 'body', reason: 'is not JSON' }, { field: 'colour', reason: 'is unknown' }] }), known)
    expect(v.fields).toEqual({})
    expect(v.general).toEqual(['is not JSON', 'colour: is unknown'])

    const conflict = mapProblem(problem({ status: 409, title: 'Conflict', detail: 'the name is taken' }), known)
    expect(conflict.general).toEqual(['the name is taken'])
    expect(mapProblem(problem({ status: 500, title: 'Internal Server Error' }), known).general).toEqual(['Internal Server Error'])
  })

  test('a prefix match needs a separator: name does not own names', () => {
    const v = mapProblem(problem({ errors: [{ field: 'names', reason: 'x' }] }), known)
    expect(v.general).toEqual(['names: x'])
  })

  test('a network failure is a general message', () => {
    expect(mapProblem(new TypeError('Failed to fetch'), known)).toEqual({ fields: {}, general: ['Failed to fetch'] })
  })
})

test('lines trims, drops blanks and repeats', () => {
  expect(lines(' a \n\nb\r\na\n  ')).toEqual(['a', 'b'])
})

test('languages splits on commas and spaces, lower-cased, each once', () => {
  expect(languages('FR, en de;fr')).toEqual(['fr', 'en', 'de'])
  expect(languages('  ')).toEqual([])
})

test('numberOrUndefined reads a typed number, a comma as the decimal point', () => {
  expect(numberOrUndefined('')).toBeUndefined()
  expect(numberOrUndefined(' 0,5 ')).toBe(0.5)
  expect(numberOrUndefined('abc')).toBeUndefined()
  expect(numberOrUndefined(3)).toBe(3)
})
