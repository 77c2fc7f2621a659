package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-oss/switchboard/pkg/egress"
)

// MaxResponseBytes bounds what the client reads of a translator's answer,
// whatever the Doer's own bound.
const MaxResponseBytes = 1 << 20

// LibreTranslate calls a LibreTranslate-compatible API: POST {URL}/translate
// with {"q", "source", "target", "format": "text", "api_key"}, answered by
// {"translatedText", "detectedLanguage": {"language"}} or, on failure, by
// {"error"} with a 4xx or 5xx status.
type LibreTranslate struct {
	// URL is the API's base, such as https://translate.example.com.
	URL    string
	APIKey string
	Client Doer
}

type ltRequest struct {
	Q      string `json:"q"`
	Source string `json:"source"`
	Target string `json:"target"`
	Format string `json:"format"`
	APIKey string `json:"api_key,omitempty"`
}

type ltResponse struct {
	TranslatedText   *string `json:"translatedText"`
	DetectedLanguage *struct {
		Language string `json:"language"`
	} `json:"detectedLanguage"`
	Error string `json:"error"`
}

// Endpoint is the URL translations are posted to.
func (l *LibreTranslate) Endpoint() string {
	return strings.TrimRight(l.URL, "/") + "/translate"
}

// Translate implements Translator. The caller bounds the call with ctx.
func (l *LibreTranslate) Translate(ctx context.Context, text, from, to string) (Result, error) {
	if from == "" {
		from = "auto"
	}
	body, err := json.Marshal(ltRequest{Q: text, Source: from, Target: to, Format: "text", APIKey: l.APIKey})
	if err != nil {
		return Result{}, fmt.Errorf("encode translation request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.Endpoint(), bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Reason: "the translator's URL is not usable", Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := l.Client.Do(req)
	if err != nil {
		return Result{}, callError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return Result{}, callError(ctx, err)
	}
	if len(raw) > MaxResponseBytes {
		return Result{}, &Error{Reason: fmt.Sprintf("the translator's answer is larger than %d bytes", MaxResponseBytes), Permanent: true}
	}
	var out ltResponse
	decodeErr := json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		reason := fmt.Sprintf("the translator answered %d", resp.StatusCode)
		if decodeErr == nil && out.Error != "" {
			reason += ": " + clip(out.Error, 300)
		}
		// 4xx but 408 and 429: the translator refuses this request (the
		// language pair, the key), and will again.
		permanent := resp.StatusCode >= 400 && resp.StatusCode < 500 &&
			resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
		return Result{}, &Error{Reason: reason, Permanent: permanent}
	}
	if decodeErr != nil || out.TranslatedText == nil {
		return Result{}, &Error{Reason: "the translator's answer is not a LibreTranslate answer (no translatedText)", Permanent: true, Err: decodeErr}
	}
	if !utf8.ValidString(*out.TranslatedText) || strings.ContainsRune(*out.TranslatedText, 0) {
		return Result{}, &Error{Reason: "the translator's answer is not valid text", Permanent: true}
	}
	res := Result{Text: *out.TranslatedText, Source: from}
	if from == "auto" {
		res.Source = ""
		if out.DetectedLanguage != nil && len(out.DetectedLanguage.Language) <= 8 {
			res.Source = out.DetectedLanguage.Language
		}
	}
	return res, nil
}

// callError classifies a failed call.
func callError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return &Error{Reason: "the translator did not answer in time", Err: err}
	case errors.Is(err, egress.ErrForbiddenAddress):
		return &Error{Reason: "the translator's address is not allowed (loopback, private, link-local or metadata addresses are refused; an operator may allow some with -egress.allow)", Permanent: true, Err: err}
	case errors.Is(err, egress.ErrTooManyRedirects):
		return &Error{Reason: "the translator redirected the request, which is not followed", Permanent: true, Err: err}
	case errors.Is(err, egress.ErrResponseTooLarge):
		return &Error{Reason: "the translator's answer is too large", Permanent: true, Err: err}
	case egress.Permanent(err):
		return &Error{Reason: "the translator's URL is not allowed", Permanent: true, Err: err}
	default:
		return &Error{Reason: "the translator cannot be reached", Err: err}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
