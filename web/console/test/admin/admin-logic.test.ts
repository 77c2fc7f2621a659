// The logic of the admin forms that turns their fields into requests:
// roles, template bodies, mail servers and their write-only secrets.
import { describe, expect, test } from 'vitest'
import { missingSecret, serverFields, serverRequest, serverUpdate } from '../../src/admin/mailboxes'
import { extraPermissions, grantableRoles, rolePermissions } from '../../src/admin/roles'
import { templateBodies } from '../../src/admin/templates'

describe('roles', () => {
  test('nobody grants a role above their own', () => {
    expect(grantableRoles('agent')).toEqual(['agent'])
    expect(grantableRoles('supervisor')).toEqual(['agent', 'supervisor'])
    expect(grantableRoles('admin')).toEqual(['agent', 'supervisor', 'admin'])
  })

  test('extra permissions leave out what the role gives', () => {
    expect(rolePermissions('agent')).toEqual([])
    expect(extraPermissions('agent', ['see_all', 'moderate'])).toEqual(['moderate', 'see_all'])
    expect(extraPermissions('supervisor', ['see_all', 'moderate', 'manage_users'])).toEqual(['moderate', 'manage_users'])
    expect(extraPermissions('admin', ['moderate', 'manage_data'])).toEqual([])
  })
})

describe('templateBodies', () => {
  const empty = { 'bodies.chat': '', 'bodies.sms': '', 'bodies.email.subject': '', 'bodies.email.text': '', 'bodies.email.html': '' }

  test('no body at all is null', () => {
    expect(templateBodies(empty)).toBeNull()
    expect(templateBodies({ ...empty, 'bodies.chat': '  ' })).toBeNull()
  })

  test('a channel has a body when its fields say something', () => {
    expect(templateBodies({ ...empty, 'bodies.chat': 'Hello {{customer_name}}', 'bodies.email.html': '<p>Hi</p>', 'bodies.email.subject': ' Your order ' })).toEqual({
      chat: { text: 'Hello {{customer_name}}' },
      email: { subject: 'Your order', html: '<p>Hi</p>' },
    })
  })

  test('an email subject alone is sent, so the API names what is missing', () => {
    expect(templateBodies({ ...empty, 'bodies.email.subject': 'Re' })).toEqual({ email: { subject: 'Re' } })
  })
})

describe('mail servers', () => {
  const saved = { host: 'imap.example.com', port: 993, tls: 'tls' as const, username: 'support', password_set: true, oauth2_token_set: false, insecure_skip_verify: false }

  test('a create sends the secrets typed, trimmed fields and the port as a number', () => {
    const f = { ...serverFields(), host: ' imap.example.com ', username: 'support', password: 'pw' }
    expect(serverRequest(f)).toEqual({ host: 'imap.example.com', port: 993, tls: 'tls', username: 'support', password: 'pw', insecure_skip_verify: false })
  })

  test('an edit keeps secrets not typed, replaces typed ones and removes those asked', () => {
    const f = serverFields(saved)
    expect(serverUpdate(f)).not.toHaveProperty('password')
    expect(serverUpdate(f)).not.toHaveProperty('oauth2_token')
    expect(serverUpdate({ ...f, password: 'new' }).password).toBe('new')
    expect(serverUpdate({ ...f, password: 'typed', removePassword: true }).password).toBe('')
    expect(serverUpdate({ ...f, removeToken: true }).oauth2_token).toBe('')
  })

  test('a login needs a secret, a kept one counting', () => {
    const f = serverFields(saved)
    expect(missingSecret(f, saved)).toBe(false)
    expect(missingSecret({ ...f, removePassword: true }, saved)).toBe(true)
    expect(missingSecret({ ...f, removePassword: true, oauth2_token: 'tok' }, saved)).toBe(false)
    expect(missingSecret({ ...serverFields(), username: 'x' })).toBe(true)
    expect(missingSecret(serverFields())).toBe(false)
  })
})
