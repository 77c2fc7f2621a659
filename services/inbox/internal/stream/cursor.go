package stream

import (
	"strconv"
	"strings"
)

// position is how far a reader of sb.conversations.v1 got: for each
// partition (the index), the offset of the last record handled, or -1 when
// none. Kafka offsets are the same on every broker and every replica, so a
// position taken on one inbox replica means the same on any other: that is
// what lets a client resume on whichever replica it reconnects to.
type position []int64

// get returns the offset reached on partition p; -1 for a partition the
// position does not name (nothing of it handled).
func (p position) get(partition int) int64 {
	if partition < 0 || partition >= len(p) {
		return -1
	}
	return p[partition]
}

// covers reports whether p is at or beyond q on every partition q names.
func (p position) covers(q position) bool {
	for i, o := range q {
		if p.get(i) < o {
			return false
		}
	}
	return true
}

// merge returns, per partition, the furthest of p and q.
func merge(p, q position) position {
	out := make(position, max(len(p), len(q)))
	for i := range out {
		out[i] = max(p.get(i), q.get(i))
	}
	return out
}

// String encodes the position as an SSE event id: "partition:offset"
// pairs joined by dots, every partition named, such as "0:123.1:-1.2:456".
// Only digits, '-', ':' and '.' appear, so it is safe in a header, in a
// query string and on an SSE line.
func (p position) String() string {
	var b strings.Builder
	b.Grow(len(p) * 12)
	for i, o := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(o, 10))
	}
	return b.String()
}

// Cursor limits: a cursor the hub wrote is far below them; anything larger
// is not one of ours, and must not make us allocate.
const (
	maxCursorBytes = 64 << 10
	maxPartitions  = 1 << 12
)

// parseCursor decodes what String wrote. Pairs may come in any order and
// partitions may be missing (they count as -1: nothing handled). ok is
// false for anything else (empty, garbage, a partition named twice, an
// offset below -1): such a cursor is ignored and the client starts live,
// as if it had sent none, rather than being refused, because an
// EventSource gives up for good on an error status.
func parseCursor(s string) (p position, ok bool) {
	if s == "" || len(s) > maxCursorBytes {
		return nil, false
	}
	pairs := strings.Split(s, ".")
	offsets := make(map[int]int64, len(pairs))
	n := 0
	for _, pair := range pairs {
		ps, offs, found := strings.Cut(pair, ":")
		if !found {
			return nil, false
		}
		part, err := strconv.Atoi(ps)
		if err != nil || part < 0 || part >= maxPartitions || ps != strconv.Itoa(part) {
			return nil, false
		}
		off, err := strconv.ParseInt(offs, 10, 64)
		if err != nil || off < -1 || offs != strconv.FormatInt(off, 10) {
			return nil, false
		}
		if _, dup := offsets[part]; dup {
			return nil, false
		}
		offsets[part] = off
		n = max(n, part+1)
	}
	p = make(position, n)
	for i := range p {
		p[i] = -1
	}
	for part, off := range offsets {
		p[part] = off
	}
	return p, true
}
