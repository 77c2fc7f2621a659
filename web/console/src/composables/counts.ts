// Tab counts. The API lists pages and does not count, so each tab's count is
// the length of one page of up to 200 under the same filters ("200+" beyond).
import { ref, type Ref } from 'vue'
import type { Client } from '../api/client'
import { tabs, type Filters, type Tab } from './inbox'

export const countCap = 200

export interface TabCount {
  n: number
  more: boolean
}

export function useTabCounts(api: Client): {
  counts: Ref<Partial<Record<Tab, TabCount>>>
  refresh: (f: Filters) => void
} {
  const counts = ref<Partial<Record<Tab, TabCount>>>({})
  let timer: ReturnType<typeof setTimeout> | null = null
  let generation = 0

  const run = async (f: Filters) => {
    const g = ++generation
    const results = await Promise.allSettled(
      tabs.map((tab) => api.get('/v1/conversations', { query: { ...f, tab, limit: countCap } })),
    )
    if (g !== generation) return
    const next: Partial<Record<Tab, TabCount>> = {}
    results.forEach((r, i) => {
      const tab = tabs[i]
      if (tab && r.status === 'fulfilled') next[tab] = { n: r.value.items.length, more: !!r.value.next_cursor }
    })
    counts.value = next
  }

  // The first count runs at once; then a burst of events makes one recount
  // 1.5 s after its first event, with the latest filters.
  let first = true
  let latest: Filters = {}
  const refresh = (f: Filters) => {
    if (first) {
      first = false
      void run(f)
      return
    }
    latest = f
    if (timer) return
    timer = setTimeout(() => {
      timer = null
      void run(latest)
    }, 1500)
  }
  return { counts, refresh }
}
