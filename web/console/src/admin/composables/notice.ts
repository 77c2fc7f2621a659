// Short confirmations ("Queue saved"), shown for a few seconds in a polite
// live region by the layout that provides them.
import { inject, provide, ref, type InjectionKey, type Ref } from 'vue'

export interface Notices {
  text: Ref<string>
  show: (msg: string) => void
}

const key: InjectionKey<Notices> = Symbol('notices')

export function provideNotices(): Notices {
  const text = ref('')
  let timer: ReturnType<typeof setTimeout> | undefined
  const n: Notices = {
    text,
    show(msg) {
      text.value = msg
      if (timer) clearTimeout(timer)
      timer = setTimeout(() => (text.value = ''), 5000)
    },
  }
  provide(key, n)
  return n
}

export function useNotices(): Notices {
  return inject(key, { text: ref(''), show: () => undefined })
}
