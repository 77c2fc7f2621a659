// The state of one form of the admin screens: field errors (from the checks
// made before sending, then from the API's problem+json), the messages that
// name no field, and whether a request is under way.
import { ref } from 'vue'
import { ApiError } from '../../api/client'
import { useI18n } from '../../i18n'
import { mapProblem, validate, type Rule } from '../forms'

export function useForm(known: readonly string[]) {
  const { t } = useI18n()
  const errors = ref<Record<string, string>>({})
  const general = ref<string[]>([])
  const busy = ref(false)

  function reset() {
    errors.value = {}
    general.value = []
    busy.value = false
  }

  /** Checks the values before sending; false (with the errors shown) when one fails. */
  function check(values: Record<string, unknown>, schema: Record<string, Rule[]>): boolean {
    const issues = validate(values, schema)
    const out: Record<string, string> = {}
    for (const [f, i] of Object.entries(issues)) {
      const msg = t(i.key, i.params)
      out[f] = i.item ? t('admin.form.item_reason', { n: i.item, reason: msg }) : msg
    }
    errors.value = out
    general.value = []
    return Object.keys(out).length === 0
  }

  /** Runs a request; its problem, if any, is spread over the fields. True when it succeeded. */
  async function run(fn: () => Promise<unknown>): Promise<boolean> {
    busy.value = true
    general.value = []
    errors.value = {}
    try {
      await fn()
      return true
    } catch (e) {
      const view = mapProblem(e, known, (n, reason) => t('admin.form.item_reason', { n, reason }))
      errors.value = view.fields
      general.value = e instanceof ApiError && e.status === 403 && view.general.length > 0 ? [t('admin.forbidden')] : view.general
      return false
    } finally {
      busy.value = false
    }
  }

  return { errors, general, busy, reset, check, run }
}

export type Form = ReturnType<typeof useForm>

/** A message for a failed load or action that has no form. */
export function problemText(e: unknown, t: ReturnType<typeof useI18n>['t']): string {
  if (e instanceof ApiError) {
    if (e.status === 403) return t('admin.forbidden')
    return e.message || e.problem.title
  }
  return t('app.error', { detail: e instanceof Error ? e.message : String(e) })
}
