// The bodies of a template from the form's fields: a channel whose fields
// are blank has no body; an email body needs a text or an HTML part.
import type { Schemas } from '../api/client'

export type TemplateBodies = Schemas['TemplateBodies']
export const templateChannels = ['chat', 'sms', 'email'] as const

export interface TemplateFields {
  'bodies.chat': string
  'bodies.sms': string
  'bodies.email.subject': string
  'bodies.email.text': string
  'bodies.email.html': string
}

/** The bodies to send, or null when no channel has one. */
export function templateBodies(f: TemplateFields): TemplateBodies | null {
  const out: TemplateBodies = {}
  if (f['bodies.chat'].trim()) out.chat = { text: f['bodies.chat'] }
  if (f['bodies.sms'].trim()) out.sms = { text: f['bodies.sms'] }
  const text = f['bodies.email.text']
  const html = f['bodies.email.html']
  const subject = f['bodies.email.subject'].trim()
  if (text.trim() || html.trim()) {
    out.email = {
      ...(subject ? { subject } : {}),
      ...(text.trim() ? { text } : {}),
      ...(html.trim() ? { html } : {}),
    }
  } else if (subject) {
    // A subject alone says nothing: the API names bodies.email; send it so it does.
    out.email = { subject }
  }
  return Object.keys(out).length ? out : null
}
