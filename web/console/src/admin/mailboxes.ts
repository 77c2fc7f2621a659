// The mail servers of a mailbox form: what a create sends, and what an edit
// changes (secrets only when typed or removed: the API never reads them back).
import type { Schemas } from '../api/client'

export type Tls = Schemas['MailServer']['tls']

export interface ServerFields {
  host: string
  port: string
  tls: Tls
  username: string
  password: string
  removePassword: boolean
  oauth2_token: string
  removeToken: boolean
  insecure_skip_verify: boolean
}

export function serverFields(s?: Schemas['MailServer'], defaults: { port: number; tls: Tls } = { port: 993, tls: 'tls' }): ServerFields {
  return {
    host: s?.host ?? '',
    port: String(s?.port ?? defaults.port),
    tls: s?.tls ?? defaults.tls,
    username: s?.username ?? '',
    password: '',
    removePassword: false,
    oauth2_token: '',
    removeToken: false,
    insecure_skip_verify: s?.insecure_skip_verify ?? false,
  }
}

export function serverRequest(f: ServerFields): Schemas['MailServerRequest'] {
  return {
    host: f.host.trim(),
    port: Number(f.port),
    tls: f.tls,
    username: f.username.trim(),
    ...(f.password ? { password: f.password } : {}),
    ...(f.oauth2_token ? { oauth2_token: f.oauth2_token } : {}),
    insecure_skip_verify: f.insecure_skip_verify,
  }
}

/** An edit: every plain field, and a secret only when typed (new value) or removed (empty). */
export function serverUpdate(f: ServerFields): Schemas['MailServerUpdate'] {
  const u: Schemas['MailServerUpdate'] = {
    host: f.host.trim(),
    port: Number(f.port),
    tls: f.tls,
    username: f.username.trim(),
    insecure_skip_verify: f.insecure_skip_verify,
  }
  if (f.removePassword) u.password = ''
  else if (f.password) u.password = f.password
  if (f.removeToken) u.oauth2_token = ''
  else if (f.oauth2_token) u.oauth2_token = f.oauth2_token
  return u
}

/**
 * Whether the server will have a login without a secret: with a username, a
 * password or an OAuth2 token is required (kept ones count).
 */
export function missingSecret(f: ServerFields, current?: Schemas['MailServer']): boolean {
  if (!f.username.trim()) return false
  const password = f.removePassword ? false : f.password !== '' || (current?.password_set ?? false)
  const token = f.removeToken ? false : f.oauth2_token !== '' || (current?.oauth2_token_set ?? false)
  return !password && !token
}
