// The delete (or disable) of a list's item, asked first in a ConfirmDialog.
import { ref, type Ref } from 'vue'
import { useI18n } from '../../i18n'
import { problemText } from './form'

export function useRemove<T>(remove: (item: T) => Promise<unknown>, done: (item: T) => void) {
  const { t } = useI18n()
  const target = ref(null) as Ref<T | null>
  const busy = ref(false)
  const error = ref('')
  return {
    target,
    busy,
    error,
    ask(item: T) {
      error.value = ''
      target.value = item
    },
    cancel() {
      target.value = null
    },
    async confirm() {
      const item = target.value
      if (item === null || busy.value) return
      busy.value = true
      error.value = ''
      try {
        await remove(item)
        target.value = null
        done(item)
      } catch (e) {
        error.value = problemText(e, t)
      } finally {
        busy.value = false
      }
    },
  }
}
