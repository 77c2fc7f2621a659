// Names for ids: the tenant's queues, skills, tag lists and, when the user
// may list them, its users. Loaded once per session and shared.
import { computed, inject, ref, type App, type ComputedRef, type InjectionKey, type Ref } from 'vue'
import type { Schemas } from '../api/client'
import type { Context } from './context'

export type Queue = Schemas['Queue']
export type Skill = Schemas['Skill']
export type TagList = Schemas['TagList']

/** A user as the console shows them. */
export interface Person {
  id: string
  name: string
  email?: string
}

export interface Directory {
  queues: Ref<Queue[]>
  skills: Ref<Skill[]>
  tagLists: Ref<TagList[]>
  /** Empty when the user may list neither users (manage_users) nor agents (see_all). */
  people: Ref<Person[]>
  mandatory: ComputedRef<TagList[]>
  queueName: (id: string | null | undefined) => string
  personName: (id: string | null | undefined) => string
  load: () => Promise<void>
  clear: () => void
}

const key: InjectionKey<Directory> = Symbol('directory')

/** Fetches every page of a cursor-paged list (bounded, these lists are small). */
async function all<T>(page: (cursor?: string) => Promise<{ items: T[]; next_cursor?: string }>): Promise<T[]> {
  const out: T[] = []
  let cursor: string | undefined
  for (let i = 0; i < 20; i++) {
    const p = await page(cursor)
    out.push(...p.items)
    if (!p.next_cursor) break
    cursor = p.next_cursor
  }
  return out
}

export function createDirectory(ctx: Context): Directory & { install: (app: App) => void } {
  const queues = ref<Queue[]>([])
  const skills = ref<Skill[]>([])
  const tagLists = ref<TagList[]>([])
  const people = ref<Person[]>([])
  let loading: Promise<void> | null = null
  const api = ctx.api

  const loadPeople = async (): Promise<Person[]> => {
    if (ctx.can('see_all')) {
      const list = await api.get('/v1/routing/agents')
      return list.items.map((a) => ({ id: a.id, name: a.name }))
    }
    if (ctx.can('manage_users')) {
      const users = await all((cursor) => api.get('/v1/admin/users', { query: { limit: 200, cursor } }))
      return users.filter((u) => !u.disabled).map((u) => ({ id: u.id, name: u.name, email: u.email }))
    }
    return []
  }

  const d: Directory = {
    queues,
    skills,
    tagLists,
    people,
    mandatory: computed(() => tagLists.value.filter((l) => l.mandatory)),
    queueName: (id) => (id ? (queues.value.find((q) => q.id === id)?.name ?? id.slice(0, 8)) : ''),
    personName: (id) => {
      if (!id) return ''
      const p = people.value.find((x) => x.id === id)
      if (p) return p.name
      return id.slice(0, 8)
    },
    load: () => {
      loading ??= (async () => {
        const [q, s, t, p] = await Promise.allSettled([
          all((cursor) => api.get('/v1/admin/queues', { query: { limit: 200, cursor } })),
          all((cursor) => api.get('/v1/admin/skills', { query: { limit: 200, cursor } })),
          all((cursor) => api.get('/v1/admin/tag-lists', { query: { limit: 200, cursor } })),
          loadPeople(),
        ])
        if (q.status === 'fulfilled') queues.value = q.value
        if (s.status === 'fulfilled') skills.value = s.value
        if (t.status === 'fulfilled') tagLists.value = t.value
        if (p.status === 'fulfilled') people.value = p.value
      })()
      return loading
    },
    clear: () => {
      loading = null
      queues.value = []
      skills.value = []
      tagLists.value = []
      people.value = []
    },
  }
  return { ...d, install: (app: App) => app.provide(key, d) }
}

export function useDirectory(): Directory {
  const d = inject(key)
  if (!d) throw new Error('directory is not installed')
  return d
}
