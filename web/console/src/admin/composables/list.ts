// A paged list of the API (items and next_cursor): the first page on load,
// more on demand, and the local changes after a create, an edit or a delete.
import { ref, type Ref } from 'vue'
import { useI18n } from '../../i18n'
import { problemText } from './form'

export interface Page<T> {
  items: T[]
  next_cursor?: string
}

export function useList<T extends { id: string }>(load: (cursor?: string) => Promise<Page<T>>) {
  const { t } = useI18n()
  const items = ref([]) as Ref<T[]>
  const loading = ref(false)
  const error = ref('')
  const next = ref<string | undefined>()

  async function fetchPage(cursor?: string) {
    loading.value = true
    error.value = ''
    try {
      const page = await load(cursor)
      items.value = cursor ? [...items.value, ...page.items] : page.items
      next.value = page.next_cursor
    } catch (e) {
      error.value = problemText(e, t)
    } finally {
      loading.value = false
    }
  }

  return {
    items,
    loading,
    error,
    next,
    reload: () => fetchPage(),
    more: () => (next.value ? fetchPage(next.value) : Promise.resolve()),
    /** Puts an item in place of the one with its id, or at the end. */
    upsert(item: T) {
      const i = items.value.findIndex((x) => x.id === item.id)
      if (i >= 0) items.value.splice(i, 1, item)
      else items.value.push(item)
    },
    remove(id: string) {
      items.value = items.value.filter((x) => x.id !== id)
    },
  }
}

/** What a list's page frame (AdminPage) reads and calls. */
export interface ListState {
  items: Ref<readonly { id: string }[]>
  loading: Ref<boolean>
  error: Ref<string>
  next: Ref<string | undefined>
  reload: () => Promise<void>
  more: () => Promise<void>
}

/** Every page of a list, for the choices of a form (queues, skills); small lists. */
export async function loadAll<T>(load: (cursor?: string) => Promise<Page<T>>, max = 10): Promise<T[]> {
  const out: T[] = []
  let cursor: string | undefined
  for (let i = 0; i < max; i++) {
    const page = await load(cursor)
    out.push(...page.items)
    if (!page.next_cursor) break
    cursor = page.next_cursor
  }
  return out
}
