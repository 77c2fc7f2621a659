// Package sms is the SMS connector: Twilio's messaging webhooks in, and the
// agents' replies out through Twilio's API.
package sms
