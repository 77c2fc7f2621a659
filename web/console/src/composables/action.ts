// Runs one API action for a form: busy while it runs, the problem's text and
// its field errors when it fails.
import { ref, type Ref } from 'vue'
import { ApiError } from '../api/client'

export function useAction(): {
  busy: Ref<boolean>
  error: Ref<string>
  fields: Ref<Record<string, string>>
  run: <T>(f: () => Promise<T>) => Promise<T | undefined>
} {
  const busy = ref(false)
  const error = ref('')
  const fields = ref<Record<string, string>>({})
  const run = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    busy.value = true
    error.value = ''
    fields.value = {}
    try {
      return await f()
    } catch (e) {
      if (e instanceof ApiError) {
        fields.value = e.fields
        const first = Object.entries(e.fields)[0]
        error.value = first ? `${e.message} (${first[0]}: ${first[1]})` : e.message
      } else error.value = String(e)
      return undefined
    } finally {
      busy.value = false
    }
  }
  return { busy, error, fields, run }
}
