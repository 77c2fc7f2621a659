package egress_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// DNS record types the test server answers.
const (
	typeA    = 1
	typeAAAA = 28
)

// answerFunc returns the addresses of name for a question of type qtype, and
// whether the name exists at all (NXDOMAIN when it does not).
type answerFunc func(name string, qtype uint16) (addrs []netip.Addr, exists bool)

// startDNS runs a minimal DNS server on 127.0.0.1 answering A and AAAA
// questions from answer, and returns a resolver that asks only it.
func startDNS(t *testing.T, answer answerFunc) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsResponse(buf[:n], answer); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	server := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", server)
		},
	}
}

// dnsResponse encodes the answer to query q (RFC 1035 section 4), or nil
// when q is not a single question.
func dnsResponse(q []byte, answer answerFunc) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[i:i+l])))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]

	addrs, exists := answer(strings.Join(labels, "."), qtype)
	var records []byte
	count := 0
	for _, a := range addrs {
		if !(qtype == typeA && a.Is4() || qtype == typeAAAA && a.Is6()) {
			continue
		}
		raw := a.AsSlice()
		records = append(records, 0xc0, 0x0c) // the name: a pointer to the question's
		records = binary.BigEndian.AppendUint16(records, qtype)
		records = binary.BigEndian.AppendUint16(records, 1) // class IN
		records = binary.BigEndian.AppendUint32(records, 0) // TTL
		records = binary.BigEndian.AppendUint16(records, uint16(len(raw)))
		records = append(records, raw...)
		count++
	}

	flags := uint16(0x8000 | 0x0400 | 0x0080)         // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(q[2:4]) & 0x0100 // recursion desired, as asked
	if !exists {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte{}, q[0:2]...) // the query's id
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // questions
	resp = binary.BigEndian.AppendUint16(resp, uint16(count))
	resp = binary.BigEndian.AppendUint16(resp, 0) // authority records
	resp = binary.BigEndian.AppendUint16(resp, 0) // additional records
	resp = append(resp, question...)
	return append(resp, records...)
}

// zone answers from a fixed map of names to addresses.
func zone(m map[string][]string) answerFunc {
	return func(name string, _ uint16) ([]netip.Addr, bool) {
		raw, ok := m[name]
		var out []netip.Addr
		for _, s := range raw {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, ok
	}
}

func TestDNSServer(t *testing.T) {
	r := startDNS(t, zone(map[string][]string{"a.example": {"192.0.2.7", "2001:db8::7"}}))
	got, err := r.LookupNetIP(context.Background(), "ip", "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("a.example resolved to %v, want 192.0.2.7 and 2001:db8::7", got)
	}
	if _, err := r.LookupNetIP(context.Background(), "ip", "missing.example"); err == nil {
		t.Error("missing.example resolved, want NXDOMAIN")
	}
}
