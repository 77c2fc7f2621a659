package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// ContentTypeProblem is the media type of RFC 9457 problem details.
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details object. Errors lists the fields of
// the request that were wrong, so that a client can point at them.
type Problem struct {
	// Type is a URI naming the kind of problem; about:blank when the status
	// says it all.
	Type string `json:"type"`
	// Title is a short, stable summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Errors names each invalid field and why.
	Errors []FieldError `json:"errors,omitempty"`
	// Extra holds extension members (RFC 9457 section 3.2), written at the
	// top level of the object, such as the current state of a resource.
	Extra map[string]any `json:"-"`
}

// MarshalJSON writes the extension members beside the standard ones.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	raw, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extra) == 0 {
		return raw, err
	}
	m := map[string]any{}
	for k, v := range p.Extra {
		m[k] = v
	}
	var std map[string]json.RawMessage
	if err := json.Unmarshal(raw, &std); err != nil {
		return nil, err
	}
	for k, v := range std {
		m[k] = v
	}
	return json.Marshal(m)
}

// FieldError is one invalid field of a request.
type FieldError struct {
	// Field is the JSON path of the field, such as user.id, or a header or
	// parameter name.
	Field string `json:"field"`
	// Reason says what is wrong and what is expected.
	Reason string `json:"reason"`
}

// Error lets a Problem travel as an error from a decoder or validator to the
// handler that writes it.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", e.Field, e.Reason)
	}
	return b.String()
}

// NewProblem builds a problem for status with the standard title.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// Invalid is a 400 problem naming one field.
func Invalid(field, reason string) *Problem {
	p := NewProblem(http.StatusBadRequest, "the request is invalid: "+field+" "+reason)
	p.Errors = []FieldError{{Field: field, Reason: reason}}
	return p
}

// WriteProblem writes p as application/problem+json, with the request's
// id (the X-Request-Id the server set on w) as request_id, for a report
// to point at the server's log lines.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	if id := w.Header().Get(HeaderRequestID); id != "" {
		withID := *p
		withID.Extra = map[string]any{"request_id": id}
		for k, v := range p.Extra {
			withID.Extra[k] = v
		}
		p = &withID
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteError writes err: as itself when it is a *Problem, else as a 500 that
// reveals nothing of the cause (the caller logs it).
func WriteError(w http.ResponseWriter, err error) {
	var p *Problem
	if errors.As(err, &p) {
		WriteProblem(w, p)
		return
	}
	WriteProblem(w, NewProblem(http.StatusInternalServerError, "the server could not handle the request; it has been logged"))
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON decodes the request body into v strictly: one JSON object, no
// unknown fields, no trailing data, within the body limit of the server.
// Every failure is a *Problem naming the field when there is one.
func DecodeJSON(r *http.Request, v any) error {
	return DecodeJSONBytes(r.Body, v)
}

// DecodeJSONBytes is DecodeJSON over any reader, for handlers that read the
// raw body first (to verify a signature over it).
func DecodeJSONBytes(body io.Reader, v any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		return decodeProblem(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if dec.More() {
		return Invalid("body", "must hold exactly one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid("body", "must hold exactly one JSON object")
	}
	// JSON may carry a NUL character (\u0000); no text column can store
	// one, so it is refused here, naming its field, rather than failing
	// deep in the database.
	if bytes.Contains(raw, []byte(`\u0000`)) {
		if field := nulField(reflect.ValueOf(v), ""); field != "" {
			return Invalid(field, "must not contain the NUL character")
		}
	}
	return nil
}

// nulField returns the JSON path of the first string in v holding a NUL
// character, or "".
func nulField(v reflect.Value, path string) string {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return nulField(v.Elem(), path)
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			if path == "" {
				return "body"
			}
			return path
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if p := nulField(v.Field(i), join(name)); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := nulField(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if strings.ContainsRune(k, 0) {
				return join("(key)")
			}
			if p := nulField(iter.Value(), join(k)); p != "" {
				return p
			}
		}
	}
	return ""
}

func decodeProblem(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
		fieldName string
	)
	switch {
	case errors.As(err, &maxErr):
		return NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit))
	case errors.As(err, &syntax):
		return Invalid("body", fmt.Sprintf("is not valid JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return Invalid(field, fmt.Sprintf("must be a JSON %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
	case errors.Is(err, io.EOF):
		return Invalid("body", "is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("body", "is truncated JSON")
	}
	// encoding/json reports unknown fields only as text.
	if _, after, ok := strings.Cut(err.Error(), "json: unknown field "); ok {
		fieldName = strings.Trim(after, `"`)
		return Invalid(fieldName, "is not a known field")
	}
	return Invalid("body", err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	default:
		return "number"
	}
}
