// Package translate translates messages for the inbox ([002]): a
// Translator interface, whose first implementation is a client of a
// LibreTranslate-compatible HTTP API, and the worker that translates
// customer messages behind ingestion (see Worker).
//
// A translator is a tenant's: its URL and key are the tenant's settings,
// and every call goes through the operator's egress client, which refuses
// addresses inside the network unless allowed (pkg/egress).
package translate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Translator translates text.
type Translator interface {
	// Translate translates text from the language from ("" or "auto":
	// the translator detects it) into to, both ISO 639-1 codes.
	Translate(ctx context.Context, text, from, to string) (Result, error)
}

// Result is a translation.
type Result struct {
	Text string
	// Source is the language translated from: from, or what the
	// translator detected when from was "auto" ("" when it did not say).
	Source string
}

// Providers are the translators a tenant may choose.
const ProviderLibreTranslate = "libretranslate"

// Providers lists every provider, for validation and documentation.
func Providers() []string { return []string{ProviderLibreTranslate} }

// Doer makes HTTP calls: an *egress.Client.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Settings are a tenant's translator.
type Settings struct {
	Provider string
	URL      string
	APIKey   string
}

// New builds the translator of settings, calling through client.
func New(s Settings, client Doer) (Translator, error) {
	switch s.Provider {
	case ProviderLibreTranslate:
		return &LibreTranslate{URL: s.URL, APIKey: s.APIKey, Client: client}, nil
	default:
		return nil, fmt.Errorf("translator %q is not one of %v", s.Provider, Providers())
	}
}

// Error is a failed translation, with a reason fit to show the tenant.
type Error struct {
	// Reason says what went wrong, e.g. "the translator answered 500".
	Reason string
	// Permanent: trying again will not help (the translator refused the
	// request, the key or the language; the URL is not allowed), as
	// opposed to a timeout, a refused connection or a 5xx.
	Permanent bool
	Err       error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "translation: " + e.Reason
	}
	return fmt.Sprintf("translation: %s: %v", e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether err is a failure that trying again will not
// fix.
func Permanent(err error) bool {
	var te *Error
	return errors.As(err, &te) && te.Permanent
}

// Reason is err in words fit for the tenant.
func Reason(err error) string {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the translator did not answer in time"
	}
	return err.Error()
}
