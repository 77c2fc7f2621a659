package follow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestScoreAgesPriority: a higher priority goes first, until a lower one
// has waited an aging period per level more; bypass goes ahead of all.
func TestScoreAgesPriority(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	aging := 10 * time.Minute
	for _, tc := range []struct {
		name          string
		first, second int64
	}{
		{"older first at equal priority", Score(t0, 0, false, aging), Score(t0.Add(time.Second), 0, false, aging)},
		{"higher priority first when as old", Score(t0, 2, false, aging), Score(t0, 1, false, aging)},
		{"higher priority first when a little newer", Score(t0.Add(9*time.Minute), 1, false, aging), Score(t0, 0, false, aging)},
		{"older first once it waited an aging period more", Score(t0, 0, false, aging), Score(t0.Add(11*time.Minute), 1, false, aging)},
		{"two levels need two periods", Score(t0, 0, false, aging), Score(t0.Add(21*time.Minute), 2, false, aging)},
		{"bypass ahead of everything", Score(t0.Add(time.Hour), -10, true, aging), Score(t0.Add(-24*time.Hour), 10, false, aging)},
	} {
		require.Less(t, tc.first, tc.second, tc.name)
	}
}
