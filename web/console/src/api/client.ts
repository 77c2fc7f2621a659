// A small typed fetch client for the inbox API. Types come from schema.d.ts,
// generated from the OpenAPI document (npm run gen:types).
//
// The browser session is a set of cookies (sb_session, HttpOnly): the client
// never sees a token. Unsafe methods carry X-CSRF-Token, copied from the
// sb_csrf cookie. A 401 triggers one refresh of the session, then one retry;
// when that fails too, onUnauthorized runs (the app goes to the login screen).
import type { components, paths } from './schema'

export type Schemas = components['schemas']
export type Problem = Schemas['Problem']
export type FieldError = Schemas['FieldError']

/**
 * A reply as the console builds it. reply_to has a default, so the generated
 * type requires it; it must be absent on chat and SMS replies (400 otherwise).
 */
export type ReplyDraft = Omit<Schemas['ReplyRequest'], 'reply_to'> & { reply_to?: Schemas['ReplyRequest']['reply_to'] }

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete'

/** The paths that have an operation for the method. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never
}[keyof paths]

type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : undefined

/** The body of the first successful response (200, 201 or 202; 204 is undefined). */
export type Ok<O> = O extends { responses: infer R }
  ? R extends { 200: infer A }
    ? JsonOf<A>
    : R extends { 201: infer A }
      ? JsonOf<A>
      : R extends { 202: infer A }
        ? JsonOf<A>
        : undefined
  : never

type BodyOf<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never
type ParamsOf<O> = O extends { parameters: infer P } ? P : never
type PathParams<O> = ParamsOf<O> extends { path: infer T } ? T : never
type QueryParams<O> = ParamsOf<O> extends { query?: infer T } ? T : never

/** What a call may carry: path and query parameters, a JSON body or a raw one, headers. */
export type Options<O> = ([PathParams<O>] extends [never] ? { path?: never } : { path: PathParams<O> }) & {
  query?: QueryParams<O>
  body?: BodyOf<O>
  /** A raw body, sent as is with its own type (uploads). */
  blob?: Blob
  headers?: Record<string, string>
  signal?: AbortSignal
  /** On a session that cannot be refreshed, only fail (no onUnauthorized): "is anyone signed in?". */
  quiet?: boolean
}

/** An answer that is not a success: the problem+json document, made a typed error. */
export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem
  /** Field path → reason, from the problem's errors list. */
  readonly fields: Record<string, string>

  constructor(problem: Problem) {
    super(problem.detail || problem.title)
    this.name = 'ApiError'
    this.status = problem.status
    this.problem = problem
    this.fields = {}
    for (const e of problem.errors ?? []) this.fields[e.field] = e.reason
  }
}

export interface ClientOptions {
  /** Called when the session is gone and cannot be refreshed. */
  onUnauthorized?: () => void
  fetch?: typeof fetch
  /** Reads the cookies (document.cookie in a browser). */
  cookies?: () => string
  baseURL?: string
}

const unsafe = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Reads a cookie's value from a Cookie-like header string. */
export function readCookie(all: string, name: string): string | undefined {
  for (const part of all.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim())
  }
  return undefined
}

/** Fills {name} segments of a path template. */
export function fillPath(template: string, params: Record<string, unknown> | undefined): string {
  return template.replace(/\{([^}]+)\}/g, (_, k: string) => {
    const v = params?.[k]
    if (v === undefined || v === null) throw new Error(`missing path parameter ${k}`)
    return encodeURIComponent(String(v))
  })
}

/** Turns query parameters into a search string; arrays repeat the key, undefined and '' are left out. */
export function toQuery(query: Record<string, unknown> | undefined): string {
  if (!query) return ''
  const sp = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue
    if (Array.isArray(v)) for (const item of v) sp.append(k, String(item))
    else sp.append(k, String(v))
  }
  const s = sp.toString()
  return s ? `?${s}` : ''
}

async function problemOf(res: Response): Promise<Problem> {
  const type = res.headers.get('content-type') ?? ''
  if (type.includes('json')) {
    try {
      const body = (await res.json()) as Partial<Problem>
      if (typeof body === 'object' && body !== null) {
        return { type: 'about:blank', title: res.statusText, ...body, status: res.status } as Problem
      }
    } catch {
      // fall through: not JSON after all
    }
  }
  return { type: 'about:blank', title: res.statusText || `HTTP ${res.status}`, status: res.status }
}

export class Client {
  private readonly opts: ClientOptions
  private refreshing: Promise<boolean> | null = null

  constructor(opts: ClientOptions = {}) {
    this.opts = opts
  }

  get<P extends PathsWith<'get'>>(path: P, o?: Options<Op<P, 'get'>>): Promise<Ok<Op<P, 'get'>>> {
    return this.call('GET', path, o)
  }
  post<P extends PathsWith<'post'>>(path: P, o?: Options<Op<P, 'post'>>): Promise<Ok<Op<P, 'post'>>> {
    return this.call('POST', path, o)
  }
  put<P extends PathsWith<'put'>>(path: P, o?: Options<Op<P, 'put'>>): Promise<Ok<Op<P, 'put'>>> {
    return this.call('PUT', path, o)
  }
  patch<P extends PathsWith<'patch'>>(path: P, o?: Options<Op<P, 'patch'>>): Promise<Ok<Op<P, 'patch'>>> {
    return this.call('PATCH', path, o)
  }
  delete<P extends PathsWith<'delete'>>(path: P, o?: Options<Op<P, 'delete'>>): Promise<Ok<Op<P, 'delete'>>> {
    return this.call('DELETE', path, o)
  }

  /** The URL of a GET route, for links and downloads the browser fetches itself. */
  url<P extends PathsWith<'get'>>(path: P, o?: Pick<Options<Op<P, 'get'>>, 'path' | 'query'>): string {
    const q = o as { path?: Record<string, unknown>; query?: Record<string, unknown> } | undefined
    return (this.opts.baseURL ?? '') + fillPath(path, q?.path) + toQuery(q?.query)
  }

  /** An untyped call, for the routes the OpenAPI document does not describe to the browser. */
  async raw<T>(method: string, path: string, body?: unknown, retry = true): Promise<T> {
    return this.send<T>(method, path, body === undefined ? undefined : JSON.stringify(body), undefined, undefined, retry)
  }

  private async call<T>(method: string, template: string, o: unknown): Promise<T> {
    const opts = (o ?? {}) as {
      path?: Record<string, unknown>
      query?: Record<string, unknown>
      body?: unknown
      blob?: Blob
      headers?: Record<string, string>
      signal?: AbortSignal
      quiet?: boolean
    }
    const url = fillPath(template, opts.path) + toQuery(opts.query)
    let headers = opts.headers
    let body: BodyInit | undefined
    if (opts.blob) {
      body = opts.blob
      headers = { 'Content-Type': opts.blob.type || 'application/octet-stream', ...headers }
    } else if (opts.body !== undefined) body = JSON.stringify(opts.body)
    return this.send<T>(method, url, body, headers, opts.signal, true, opts.quiet)
  }

  private async send<T>(
    method: string,
    url: string,
    body: BodyInit | undefined,
    extra: Record<string, string> | undefined,
    signal: AbortSignal | undefined,
    retry: boolean,
    quiet = false,
  ): Promise<T> {
    const doFetch = this.opts.fetch ?? globalThis.fetch.bind(globalThis)
    const headers: Record<string, string> = { Accept: 'application/json', ...extra }
    if (typeof body === 'string') headers['Content-Type'] = 'application/json'
    if (unsafe.has(method)) {
      const csrf = readCookie(this.cookies(), 'sb_csrf')
      if (csrf) headers['X-CSRF-Token'] = csrf
    }
    const res = await doFetch((this.opts.baseURL ?? '') + url, {
      method,
      headers,
      body,
      credentials: 'same-origin',
      signal,
    })
    if (res.status === 401 && retry && !url.startsWith('/v1/auth/')) {
      if (await this.refresh()) return this.send<T>(method, url, body, extra, signal, false, quiet)
      if (!quiet) this.opts.onUnauthorized?.()
    }
    if (!res.ok) throw new ApiError(await problemOf(res))
    if (res.status === 204 || res.headers.get('content-length') === '0') return undefined as T
    const type = res.headers.get('content-type') ?? ''
    if (type.includes('json')) return (await res.json()) as T
    return (await res.text()) as T
  }

  /**
   * Renews the session with the refresh cookie; concurrent callers share one
   * attempt. False when the server refused (the session is over); a network
   * failure is not taken as the end of the session.
   */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.send<unknown>('POST', '/v1/auth/session/refresh', undefined, undefined, undefined, false)
        .then(() => true)
        .catch((e: unknown) => !(e instanceof ApiError && e.status >= 400 && e.status < 500))
        .finally(() => {
          this.refreshing = null
        })
    }
    return this.refreshing
  }

  private cookies(): string {
    if (this.opts.cookies) return this.opts.cookies()
    return typeof document === 'undefined' ? '' : document.cookie
  }
}
