import { describe, expect, test } from 'vitest'
import { ApiError, Client, fillPath, readCookie, toQuery } from '../src/api/client'

interface Call {
  url: string
  init: RequestInit
}

function fakeFetch(answers: Response[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = []
  const f = async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} })
    const next = answers.shift()
    if (!next) throw new Error(`unexpected call to ${String(url)}`)
    return next
  }
  return { fetch: f as typeof fetch, calls }
}
const json = (status: number, body: unknown, type = 'application/json') =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': type } })
const headers = (c: Call) => c.init.headers as Record<string, string>

describe('client', () => {
  test('sends the CSRF cookie on unsafe methods only, with the session cookie', async () => {
    const { fetch, calls } = fakeFetch([json(200, { items: [] }), json(200, { id: 'c1' })])
    const api = new Client({ fetch, cookies: () => 'theme=x; sb_csrf=tok%2Ben; other=1' })
    await api.get('/v1/conversations', { query: { tab: 'received', flagged: true } })
    await api.post('/v1/conversations/{id}/assign', { path: { id: 'c1' } })
    expect(calls[0]?.url).toBe('/v1/conversations?tab=received&flagged=true')
    expect(headers(calls[0]!)['X-CSRF-Token']).toBeUndefined()
    expect(calls[0]?.init.credentials).toBe('same-origin')
    expect(calls[1]?.url).toBe('/v1/conversations/c1/assign')
    expect(calls[1]?.init.method).toBe('POST')
    expect(headers(calls[1]!)['X-CSRF-Token']).toBe('tok+en')
  })

  test('refreshes the session once on 401 and retries', async () => {
    const { fetch, calls } = fakeFetch([
      json(401, { type: 'about:blank', title: 'Unauthorized', status: 401 }, 'application/problem+json'),
      json(200, { user: {}, expires_at: '2030-01-01T00:00:00Z' }),
      json(200, { tenant_id: 't', role: 'agent', permissions: [], queue_ids: [] }),
    ])
    let expired = 0
    const api = new Client({ fetch, cookies: () => 'sb_csrf=c', onUnauthorized: () => expired++ })
    const me = await api.get('/v1/me')
    expect(me.role).toBe('agent')
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual(['GET /v1/me', 'POST /v1/auth/session/refresh', 'GET /v1/me'])
    expect(expired).toBe(0)
  })

  test('goes to the login when the refresh is refused', async () => {
    const problem = { type: 'about:blank', title: 'Unauthorized', status: 401 }
    const { fetch } = fakeFetch([json(401, problem), json(401, problem)])
    let expired = 0
    const api = new Client({ fetch, onUnauthorized: () => expired++ })
    await expect(api.get('/v1/me')).rejects.toBeInstanceOf(ApiError)
    expect(expired).toBe(1)
  })

  test('turns problem+json into a typed error with its fields', async () => {
    const { fetch } = fakeFetch([
      json(
        422,
        { type: 'about:blank', title: 'Unprocessable Entity', status: 422, detail: 'mandatory tags are missing', missing_tags: ['Motif'], errors: [{ field: 'tags', reason: 'needs Motif' }] },
        'application/problem+json',
      ),
    ])
    const api = new Client({ fetch })
    const err = await api.post('/v1/conversations/{id}/reply', { path: { id: 'c' }, body: { text: 'hi', reply_to: 'mailbox' } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    const e = err as ApiError
    expect(e.status).toBe(422)
    expect(e.message).toBe('mandatory tags are missing')
    expect(e.fields).toEqual({ tags: 'needs Motif' })
    expect(e.problem.missing_tags).toEqual(['Motif'])
  })

  test('uploads a raw body with its own type', async () => {
    const { fetch, calls } = fakeFetch([json(201, { id: 'u', name: 'a b.pdf', content_type: 'application/pdf', size: 3 })])
    const api = new Client({ fetch })
    const u = await api.post('/v1/attachments', { query: { filename: 'a b.pdf' }, blob: new Blob(['abc'], { type: 'application/pdf' }) })
    expect(u.id).toBe('u')
    expect(calls[0]?.url).toBe('/v1/attachments?filename=a+b.pdf')
    expect(headers(calls[0]!)['Content-Type']).toBe('application/pdf')
  })

  test('answers undefined on 204', async () => {
    const { fetch } = fakeFetch([new Response(null, { status: 204 })])
    const api = new Client({ fetch })
    await expect(api.raw('DELETE', '/v1/auth/session')).resolves.toBeUndefined()
  })
})

describe('helpers', () => {
  test('readCookie', () => {
    expect(readCookie('a=1; sb_csrf=xyz', 'sb_csrf')).toBe('xyz')
    expect(readCookie('a=1', 'sb_csrf')).toBeUndefined()
    expect(readCookie('', 'sb_csrf')).toBeUndefined()
  })
  test('fillPath encodes and requires each parameter', () => {
    expect(fillPath('/v1/messages/{id}/attachments/{index}', { id: 'a/b', index: 2 })).toBe('/v1/messages/a%2Fb/attachments/2')
    expect(() => fillPath('/v1/conversations/{id}', {})).toThrow(/id/)
  })
  test('toQuery leaves out empty values and repeats arrays', () => {
    expect(toQuery({ a: '', b: undefined, c: false, d: ['x', 'y'] })).toBe('?c=false&d=x&d=y')
    expect(toQuery({})).toBe('')
  })
})

test('a quiet call fails without sending anyone to the login', async () => {
  const problem = { type: 'about:blank', title: 'Unauthorized', status: 401 }
  const { fetch } = fakeFetch([json(401, problem), json(401, problem)])
  let expired = 0
  const api = new Client({ fetch, onUnauthorized: () => expired++ })
  await expect(api.get('/v1/me', { quiet: true })).rejects.toBeInstanceOf(ApiError)
  expect(expired).toBe(0)
})
