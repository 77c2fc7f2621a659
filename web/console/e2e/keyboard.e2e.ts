// The same day with the keyboard alone: Tab, Enter, type-ahead and the
// console's shortcuts; no mouse click from login to completion.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, onTestFailed, test } from 'vitest'
import { axeCheck, base, conversation, conversationWith, customerSays, dumpPages, eventually, launch, login, newUser, screenshot } from './harness'
import { setUpTeam, type Team } from './setup'

let browser: Browser
let team: Team

beforeAll(async () => {
  ;[browser, team] = await Promise.all([launch(), setUpTeam('Clavier SA')])
})
afterAll(async () => {
  await browser?.close()
})

/** The data-testid of the focused element. */
const focused = (page: Page) => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? '')

/** Presses Tab until the element with testid has the focus (at most max times). */
async function tabTo(page: Page, testid: string, max = 40) {
  for (let i = 0; i < max; i++) {
    if ((await focused(page)) === testid) return
    await page.keyboard.press('Tab')
  }
  throw new Error(`${testid} not reached with Tab in ${max} presses (focus on ${await focused(page)})`)
}

test('keyboard only: login, offer, reply, completion', async () => {
  onTestFailed(() => dumpPages('keyboard'))
  const { t } = team
  const { page } = await newUser(browser)
  await login(page, t, team.agent1.email, true)

  // Online with the presence switch, by type-ahead.
  await tabTo(page, 'presence-switch')
  await page.keyboard.type('Online')
  await page.locator('[data-testid="stream-status"][data-status="live"]').waitFor({ state: 'attached' })
  await eventually('online', async () => (await page.getByTestId('presence-switch').inputValue()) === 'online', 5000)

  // The offer, taken with its key.
  await customerSays(t, 'dominique', 'Je n’arrive pas à me connecter à mon compte.')
  await page.getByTestId('offer').first().waitFor()
  const c = await conversationWith(t, 'me connecter')
  // Off the switch (type-ahead would take the key), then "a" accepts.
  await page.keyboard.press('Tab')
  await page.keyboard.press('a')
  await page.waitForURL(new RegExp(`/c/${c.id}`))
  expect(await conversation(t, c.id)).toMatchObject({ state: 'assigned', assignee_ids: [team.agent1.id] })

  // A reply: "c" writes, Ctrl+Enter sends.
  await page.getByTestId('composer').waitFor()
  await page.keyboard.press('Escape')
  await page.keyboard.press('c')
  expect(await focused(page)).toBe('composer-text')
  await page.keyboard.type('Je réinitialise votre mot de passe, un instant.')
  await page.keyboard.press('Control+Enter')
  await page.locator('[data-testid="message"][data-direction="outbound"]').filter({ hasText: 'réinitialise' }).waitFor()
  await eventually('answered', async () => (await conversation(t, c.id)).state === 'answered', 10_000)

  // The customer answers; Alice takes it back ("t") and completes it ("x").
  await customerSays(t, 'dominique', 'Merci, ça marche !')
  await page.getByTestId('thread').getByTestId('message').filter({ hasText: 'ça marche' }).waitFor()
  await page.keyboard.press('Escape')
  const state = (await conversation(t, c.id)).state
  if (state !== 'assigned') {
    await page.keyboard.press('t')
    await eventually('taken back', async () => (await conversation(t, c.id)).state === 'assigned', 10_000)
  }
  await page.getByTestId('action-complete').waitFor()
  await page.keyboard.press('x')
  await page.getByTestId('complete-dialog').waitFor()
  await tabTo(page, 'complete-smart-close', 10)
  await page.keyboard.press('Space')
  await tabTo(page, 'complete-submit', 10)
  await page.keyboard.press('Enter')
  await eventually('done', async () => (await conversation(t, c.id)).state === 'done', 30_000)

  // The shortcuts' help, opened with "?".
  await page.keyboard.press('Escape')
  await page.keyboard.press('?')
  await page.getByTestId('shortcut-help').waitFor()
  await axeCheck(page, 'shortcuts help')
  await page.keyboard.press('Escape')

  // The same conversation on a phone.
  const phone = await newUser(browser, { width: 390, height: 844 })
  await login(phone.page, t, team.agent1.email)
  await phone.page.goto(`${base}/inbox/done/c/${c.id}`)
  await phone.page.getByTestId('thread').getByTestId('message').filter({ hasText: 'ça marche' }).waitFor()
  await axeCheck(phone.page, 'conversation on a phone')
  await screenshot(phone.page, 'phone-conversation')
})
