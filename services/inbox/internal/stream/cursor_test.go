package stream

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, p := range []position{{-1}, {0}, {123, -1, 456}, {9223372036854775807, 0}} {
		got, ok := parseCursor(p.String())
		require.True(t, ok, "parse %q", p.String())
		require.Equal(t, p, got)
	}
	require.Equal(t, "0:123.1:-1.2:456", position{123, -1, 456}.String())
}

func TestParseCursorAcceptsAnyOrderAndMissingPartitions(t *testing.T) {
	p, ok := parseCursor("2:7.0:3")
	require.True(t, ok)
	require.Equal(t, position{3, -1, 7}, p, "a partition not named has nothing handled")
	require.Equal(t, int64(-1), p.get(5), "nor has one beyond the cursor")
}

func TestParseCursorRefusesMalformedCursors(t *testing.T) {
	for _, s := range []string{
		"", "garbage", "0", "0:", ":5", "0:1:2", "0:1..1:2", "0:1.", ".0:1",
		"0:1.0:2",      // a partition twice
		"-1:5", "0:-2", // out of range
		"01:5", "0:05", "+1:5", "0:+5", " 0:5", "0:5 ", // not as written
		"0:99999999999999999999",      // overflows
		"99999:1",                     // more partitions than any topic
		"MDoxMjM=",                    // base64 of "0:123": not ours
		strings.Repeat("0:1.", 1<<15), // too long
	} {
		_, ok := parseCursor(s)
		require.False(t, ok, "parseCursor(%q) accepted", s)
	}
}

func TestPositionCoversAndMerge(t *testing.T) {
	require.True(t, position{3, 4}.covers(position{3, 4}))
	require.True(t, position{3, 4}.covers(position{2}))
	require.False(t, position{3, 4}.covers(position{3, 5}))
	require.False(t, position{3}.covers(position{3, 0}), "a partition not named is at -1")
	require.True(t, position{3}.covers(position{3, -1}))
	require.Equal(t, position{5, 4, 1}, merge(position{5, 2}, position{1, 4, 1}))
}
