package imapsync

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestAppendSent(t *testing.T) {
	ts := newServer(t, serverOptions{})
	require.NoError(t, ts.user.Create("Sent", nil))
	mb := ts.mailbox()
	ctx := testkit.Context(t)
	require.NoError(t, AppendSent(ctx, mb, "Sent", mail(1, 10), 0))
	st := ts.status(t, "Sent")
	require.Equal(t, uint32(1), *st.NumMessages)
	require.Equal(t, uint32(0), *st.NumUnseen, "our own reply is appended as seen")

	// A folder that does not exist, or a refused login, is an error.
	require.Error(t, AppendSent(ctx, mb, "Nowhere", mail(2, 0), 0))
	mb.IMAP.Password = "wrong"
	require.Error(t, AppendSent(ctx, mb, "Sent", mail(3, 0), 0))
}
