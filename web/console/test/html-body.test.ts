// @vitest-environment happy-dom
// Customer HTML is shown in a sandboxed frame that runs nothing.
import { createApp, h } from 'vue'
import { expect, test } from 'vitest'
import HtmlBody from '../src/components/conversation/HtmlBody.vue'
import { createI18n } from '../src/i18n'

test('customer HTML goes into a sandboxed srcdoc frame without scripts', () => {
  const el = document.createElement('div')
  const html = '<p>Bonjour</p><img src="https://tracker.example/p.gif">'
  createApp({ render: () => h(HtmlBody, { html, title: 'Votre commande' }) })
    .use(createI18n('fr'))
    .mount(el)
  const frame = el.querySelector('iframe')
  expect(frame).not.toBeNull()
  expect(frame?.getAttribute('sandbox')).toBe('')
  expect(frame?.getAttribute('referrerpolicy')).toBe('no-referrer')
  const doc = frame?.getAttribute('srcdoc') ?? ''
  expect(doc).toContain(html)
  expect(doc).toContain(`content="default-src 'none'; img-src data:"`)
  expect(frame?.getAttribute('title')).toBe('E-mail mis en forme : Votre commande')
})
