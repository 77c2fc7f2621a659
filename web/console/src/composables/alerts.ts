// What asks for the agent's attention besides offers: their notifications
// (assigned to them, help requests, experts, customers writing on what they
// hold), and inactivity alerts and ended deferrals ([004]) on the
// conversations they hold.
import { computed, inject, ref, type App, type ComputedRef, type InjectionKey, type Ref } from 'vue'
import type { Schemas } from '../api/client'
import type { Context } from './context'
import type { LiveEvent } from './live'

export type AlertKind = Schemas['Notification']['kind'] | 'inactive' | 'wake'

export interface Alert {
  /** The notification's id, or <kind>:<conversation id>:<event id>. */
  id: string
  kind: AlertKind
  conversation_id: string
  contact_name?: string
  minutes?: number
  at: string
  read: boolean
}

export interface Alerts {
  items: Ref<Alert[]>
  unread: ComputedRef<number>
  /** Applies a live event; the new alert when one came. */
  apply: (e: LiveEvent) => Alert | null
  load: () => Promise<void>
  markRead: (ids?: string[]) => Promise<void>
  reset: () => void
}

const key: InjectionKey<Alerts> = Symbol('alerts')

export function createAlerts(ctx: Context): Alerts & { install: (app: App) => void } {
  const items = ref<Alert[]>([])
  const me = () => ctx.me.value?.user_id ?? ''
  const push = (a: Alert) => {
    items.value = [a, ...items.value.filter((x) => x.id !== a.id)].slice(0, 100)
  }

  const alerts: Alerts = {
    items,
    unread: computed(() => items.value.filter((a) => !a.read).length),
    apply: (e) => {
      if (e.type === 'sb.notification.v1') {
        const n = e.data
        const a: Alert = {
          id: n.id,
          kind: n.kind,
          conversation_id: n.conversation?.id ?? n.conversation_id,
          at: n.created_at,
          read: false,
        }
        if (items.value.some((x) => x.id === a.id)) return null
        push(a)
        return a
      }
      // A deferral that ends ([004]) or an inactive conversation, held by this agent.
      if (e.type === 'sb.conversation.changed.v1' && (e.data.action === 'inactive' || e.data.action === 'wake')) {
        const c = e.data.conversation
        if (!c.assignee_ids.includes(me())) return null
        const kind = e.data.action
        const minutes = Number(e.data.data?.minutes)
        const a: Alert = {
          id: `${kind}:${c.id}:${e.id}`,
          kind,
          conversation_id: c.id,
          contact_name: c.contact_name,
          minutes: Number.isFinite(minutes) ? minutes : undefined,
          at: e.time,
          read: false,
        }
        if (items.value.some((x) => x.id === a.id)) return null
        push(a)
        return a
      }
      return null
    },
    load: async () => {
      if (!me()) return
      const list = await ctx.api.get('/v1/me/notifications', { query: { unread: true, limit: 50 } })
      const known = new Set(items.value.map((a) => a.id))
      items.value = [
        ...items.value,
        ...list.items
          .filter((n) => !known.has(n.id))
          .map((n) => ({ id: n.id, kind: n.kind, conversation_id: n.conversation_id, at: n.created_at, read: n.read_at !== null })),
      ].sort((a, b) => Date.parse(b.at) - Date.parse(a.at))
    },
    markRead: async (ids) => {
      const chosen = ids ?? items.value.filter((a) => !a.read).map((a) => a.id)
      const server = chosen.filter((id) => !id.startsWith('inactive:') && !id.startsWith('wake:'))
      items.value = items.value.map((a) => (chosen.includes(a.id) ? { ...a, read: true } : a))
      if (server.length > 0) await ctx.api.post('/v1/me/notifications/read', { body: { ids: server } })
    },
    reset: () => {
      items.value = []
    },
  }
  return { ...alerts, install: (app: App) => app.provide(key, alerts) }
}

export function useAlerts(): Alerts {
  const a = inject(key)
  if (!a) throw new Error('alerts are not installed')
  return a
}
