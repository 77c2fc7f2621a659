// Push mode ([004]): the conversations offered to the signed-in agent, each
// until it is accepted, rejected or lapses, and the offers they missed.
import { inject, ref, type App, type InjectionKey, type Ref } from 'vue'
import type { Context } from './context'
import type { Conversation, LiveEvent } from './live'

export interface MissedOffer {
  conversation_id: string
  contact_name: string
  channel: Conversation['channel']
  at: string
  made_away: boolean
}

export interface Offers {
  offers: Ref<Conversation[]>
  missed: Ref<MissedOffer[]>
  /** Applies a live event; true when a new offer arrived. */
  apply: (e: LiveEvent) => 'offer' | 'missed' | null
  load: () => Promise<void>
  accept: (id: string) => Promise<Conversation>
  reject: (id: string) => Promise<void>
  clearMissed: () => void
  reset: () => void
}

const key: InjectionKey<Offers> = Symbol('offers')
const missedKey = (user: string) => `sb.missed-offers.${user}`

export function createOffers(ctx: Context): Offers & { install: (app: App) => void } {
  const offers = ref<Conversation[]>([])
  const missed = ref<MissedOffer[]>([])
  const me = () => ctx.me.value?.user_id ?? ''

  const saveMissed = () => {
    try {
      sessionStorage.setItem(missedKey(me()), JSON.stringify(missed.value.slice(0, 50)))
    } catch {
      // storage unavailable: kept in memory only
    }
  }
  const drop = (id: string) => {
    offers.value = offers.value.filter((c) => c.id !== id)
  }

  const o: Offers = {
    offers,
    missed,
    apply: (e) => {
      if (e.type !== 'sb.conversation.changed.v1') return null
      const { action, conversation: c, data } = e.data
      const mine = c.state === 'offered' && c.assignee_ids[0] === me()
      if (mine) {
        const isNew = !offers.value.some((x) => x.id === c.id)
        offers.value = [...offers.value.filter((x) => x.id !== c.id), c]
        return isNew && action === 'offer' ? 'offer' : null
      }
      drop(c.id)
      if (action === 'offer_expired' && data?.user_id === me()) {
        missed.value = [
          {
            conversation_id: c.id,
            contact_name: c.contact_name,
            channel: c.channel,
            at: e.time,
            made_away: data.made_away === true,
          },
          ...missed.value.filter((m) => !(m.conversation_id === c.id && m.at === e.time)),
        ]
        saveMissed()
        return 'missed'
      }
      return null
    },
    load: async () => {
      const id = me()
      if (!id) return
      try {
        missed.value = JSON.parse(sessionStorage.getItem(missedKey(id)) ?? '[]') as MissedOffer[]
      } catch {
        missed.value = []
      }
      const list = await ctx.api.get('/v1/conversations', { query: { state: 'offered', assignee_id: id, limit: 50 } })
      offers.value = list.items
    },
    accept: async (id) => {
      const c = await ctx.api.post('/v1/conversations/{id}/accept', { path: { id } })
      drop(id)
      return c
    },
    reject: async (id) => {
      await ctx.api.post('/v1/conversations/{id}/reject', { path: { id } })
      drop(id)
    },
    clearMissed: () => {
      missed.value = []
      saveMissed()
    },
    reset: () => {
      offers.value = []
      missed.value = []
    },
  }
  return { ...o, install: (app: App) => app.provide(key, o) }
}

export function useOffers(): Offers {
  const o = inject(key)
  if (!o) throw new Error('offers are not installed')
  return o
}
