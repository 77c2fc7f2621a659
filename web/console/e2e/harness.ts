// What the browser tests share: a tenant made by the binary, the API with
// its admin token, the signed chat webhook, Debian's Chromium driven by
// playwright-core, axe, screenshots and bounded waits.
import { execFileSync } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { expect, inject } from 'vitest'

export const base = inject('base')
export const password = 'correct horse battery staple'

export interface Tenant {
  id: string
  adminToken: string
  adminEmail: string
  channelSecret: string
  webhookPath: string
  consoleURL: string
}

/** A tenant with its first admin, made as an operator does: `switchboard admin create-tenant`. */
export function createTenant(name: string): Tenant {
  const adminEmail = `admin-${randomBytes(3).toString('hex')}@acme.test`
  const out = execFileSync(
    inject('binary'),
    // The -target=all process's data directory holds the key that seals the channel's secret.
    ['admin', 'create-tenant', '-data-dir', inject('dataDir'), '-name', name, '-admin-email', adminEmail, '-admin-name', 'Adèle Admin', '-console-url', base + '/'],
    { env: { ...process.env, DATABASE_URL: inject('databaseURL'), SB_ADMIN_PASSWORD: password }, timeout: 30_000 },
  )
  const b = JSON.parse(out.toString()) as {
    tenant: { id: string }
    api_token: { token: string }
    chat_channel: { secret: string }
    chat_webhook_path: string
    console_url: string
  }
  return { id: b.tenant.id, adminToken: b.api_token.token, adminEmail, channelSecret: b.chat_channel.secret, webhookPath: b.chat_webhook_path, consoleURL: b.console_url }
}

/** Calls the API with a bearer token; fails the test on an unexpected status. */
export async function api<T = unknown>(token: string, method: string, path: string, body?: unknown, want = [200, 201, 204]): Promise<T> {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await r.text()
  if (!want.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/** A customer writes through the tenant's signed chat webhook (pkg/webhook's scheme). */
export async function customerSays(t: Tenant, session: string, text: string, extra: Record<string, unknown> = {}) {
  const body = JSON.stringify({ message_id: 'm-' + randomBytes(8).toString('hex'), session_id: session, user: { id: 'user-' + session, name: 'Camille Martin' }, text, ...extra })
  const ts = String(Math.floor(Date.now() / 1000))
  const sig = 'v1=' + createHmac('sha256', t.channelSecret).update(ts + '.' + body).digest('hex')
  const r = await fetch(base + t.webhookPath, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Switchboard-Timestamp': ts, 'X-Switchboard-Signature': sig },
    body,
    signal: AbortSignal.timeout(15_000),
  })
  if (r.status !== 202) throw new Error(`chat webhook: ${r.status} ${await r.text()}`)
}

/** Polls cond every 100 ms until it returns a value, for at most ms. */
export async function eventually<T>(what: string, cond: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await cond()
      if (v) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${String(last)})` : ''}`)
    await new Promise((ok) => setTimeout(ok, 100))
  }
}

export interface Conversation {
  id: string
  state: string
  assignee_ids: string[]
  queue_id?: string | null
}

/** The one conversation whose messages contain text, seen by the admin. */
export function conversationWith(t: Tenant, text: string): Promise<Conversation> {
  return eventually(`a conversation with ${text}`, async () => {
    const l = await api<{ items: Conversation[] }>(t.adminToken, 'GET', `/v1/conversations?limit=10&q=${encodeURIComponent(text)}`)
    return l.items.length === 1 ? l.items[0] : undefined
  })
}

export function conversation(t: Tenant, id: string): Promise<Conversation> {
  return api<Conversation>(t.adminToken, 'GET', `/v1/conversations/${id}`)
}

const chromiumPath = process.env.SB_CHROMIUM ?? '/usr/bin/chromium'

/** Debian's Chromium, headless, in a fresh profile (playwright-core makes one per launch). */
export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

/** A browser context as a user's own browser: English, 1280x720. */
export async function newUser(browser: Browser, viewport = { width: 1280, height: 720 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'Europe/Paris', acceptDownloads: false })
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  openPages.push(page)
  page.on('pageerror', (e) => console.error('console e2e: page error:', e.message))
  return { context, page }
}

const openPages: Page[] = []

/**
 * Saves what every open page shows, with its URL, under
 * $SB_E2E_FAILURES (default: the system's temporary directory), when a test failed.
 */
export async function dumpPages(test: string) {
  const dir = join(process.env.SB_E2E_FAILURES ?? join(tmpdir(), 'switchboard-console-e2e-failures'), test.replace(/[^a-z0-9]+/gi, '-'))
  mkdirSync(dir, { recursive: true })
  for (const [i, page] of openPages.entries()) {
    if (page.isClosed()) continue
    await page.screenshot({ path: join(dir, `page-${i}.png`) }).catch(() => undefined)
    console.error(`console e2e: page ${i} was at ${page.url()} (${join(dir, `page-${i}.png`)})`)
  }
}

/** Logs in through the login screen with the mouse (clicks) or the keyboard alone. */
export async function login(page: Page, t: Tenant, email: string, keyboard = false, shot?: string) {
  await page.goto(`${base}/login?tenant=${t.id}`)
  await page.getByTestId('login-form').waitFor()
  await axeCheck(page, 'login')
  if (shot) await screenshot(page, shot)
  if (keyboard) {
    await page.getByTestId('login-email').focus()
    await page.keyboard.type(email)
    await page.keyboard.press('Tab')
    await page.keyboard.type(password)
    await page.keyboard.press('Enter')
  } else {
    await page.getByTestId('login-email').fill(email)
    await page.getByTestId('login-password').fill(password)
    await page.getByTestId('login-submit').click()
  }
  await page.waitForURL(/\/inbox/)
  await page.getByTestId('presence-switch').waitFor()
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
/** Every screen axe looked at, for the summary. */
export const axeScreens: string[] = []

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: string[]; failureSummary?: string }[]
}

/**
 * Runs axe on the page as it is (evaluated through the DevTools protocol, so
 * the console's CSP needs no exception) and fails on any serious or critical
 * violation.
 */
export async function axeCheck(page: Page, screen: string) {
  const loaded = await page.evaluate(() => 'axe' in window)
  if (!loaded) await page.evaluate(axeSource)
  // A panel still fading in (the offer's pop) has colours half-way: axe
  // would measure those. Let the finite animations end first.
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
        .map((a) => a.finished.catch(() => undefined)),
    ),
  )
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (c: unknown, o: unknown) => Promise<{ violations: AxeViolation[] }> } }).axe
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }))
  })
  axeScreens.push(screen)
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((n) => `  ${n.target.join(' ')}: ${n.failureSummary ?? ''}`).join('\n')}`).join('\n')
  expect(report, `axe on the ${screen} screen`).toBe('')
}

const shotDir = process.env.SB_SCREENSHOTS
/** Saves a PNG of the page under $SB_SCREENSHOTS, when set. */
export async function screenshot(page: Page, name: string) {
  if (!shotDir) return
  mkdirSync(shotDir, { recursive: true })
  await page.screenshot({ path: join(shotDir, `${name}.png`), animations: 'disabled', caret: 'hide' })
}

/** Median and 95th percentile of samples, in ms. */
export function percentiles(samples: number[]): { median: number; p95: number } {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN
  return { median: at(0.5), p95: at(0.95) }
}
