package api

import (
	"errors"
	"testing"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// TestChatEndpointsFollowTheEgressPolicy checks that the URLs an admin
// may save are those the operator's egress policy allows: public https
// by default; an allowed address, and plain http to it when allowed too.
func TestChatEndpointsFollowTheEgressPolicy(t *testing.T) {
	strict := New(Deps{})
	policy, err := egress.NewPolicy(egress.Config{Allow: config.StringList{"127.0.0.1", "10.1.2.0/24"}, AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	lax := New(Deps{Egress: policy})
	for _, c := range []struct {
		url         string
		strict, lax bool
	}{
		{"https://bots.example.com/hook", true, true},
		{"https://203.0.114.7/hook", true, true},
		{"http://bots.example.com/hook", false, false},
		{"https://127.0.0.1:8443/hook", false, true},
		{"http://127.0.0.1:8081/hook", false, true},
		{"http://10.1.2.3/hook", false, true},
		{"https://10.1.3.3/hook", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://bot:secret@bots.example.com/hook", false, false},
		{"ftp://bots.example.com/hook", false, false},
		{"", false, false},
	} {
		for _, a := range []struct {
			name string
			api  *API
			want bool
		}{{"default policy", strict, c.strict}, {"allow-list", lax, c.lax}} {
			err := a.api.checkURL("outbound.url", c.url)
			var fe *domain.FieldError
			switch {
			case a.want && err != nil:
				t.Errorf("%s: %q refused: %v", a.name, c.url, err)
			case !a.want && (!errors.As(err, &fe) || fe.Field != "outbound.url"):
				t.Errorf("%s: %q: got %v, want a refusal naming outbound.url", a.name, c.url, err)
			}
		}
	}
}
