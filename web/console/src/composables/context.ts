// What every screen shares: the API client and the session (who is signed in).
import { inject, ref, type App, type InjectionKey, type Ref } from 'vue'
import { ApiError, Client, type Schemas } from '../api/client'
import * as session from '../api/session'

export type Me = Schemas['Me']
export type Permission = Schemas['Permission']

export interface Context {
  api: Client
  me: Ref<Me | null>
  /** Whether the signed-in user holds a permission. */
  can: (p: Permission) => boolean
  /** Loads who is signed in; null when nobody is. */
  load: () => Promise<Me | null>
  login: (c: session.Credentials) => Promise<Me>
  logout: () => Promise<void>
}

const key: InjectionKey<Context> = Symbol('context')

export function createContext(opts: { onUnauthorized: () => void; fetch?: typeof fetch }): Context & {
  install: (app: App) => void
} {
  const me = ref<Me | null>(null)
  const api = new Client({
    onUnauthorized: () => {
      me.value = null
      opts.onUnauthorized()
    },
    fetch: opts.fetch,
  })
  const ctx: Context = {
    api,
    me,
    can: (p) => me.value?.permissions.includes(p) ?? false,
    load: async () => {
      try {
        me.value = await api.get('/v1/me', { quiet: true })
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) me.value = null
        else throw e
      }
      return me.value
    },
    login: async (c) => {
      const s = await session.login(api, c)
      me.value = s.user
      return s.user
    },
    logout: async () => {
      try {
        await session.logout(api)
      } finally {
        me.value = null
      }
    },
  }
  return { ...ctx, install: (app: App) => app.provide(key, ctx) }
}

export function useContext(): Context {
  const c = inject(key)
  if (!c) throw new Error('context is not installed')
  return c
}
