package email

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const dovecotBinary = "/usr/sbin/dovecot"

// dovecotConfig is a Dovecot serving IMAP without TLS on one loopback port,
// every user with password "secret" and a Maildir under $D/mail.
const dovecotConfig = `protocols = imap
listen = 127.0.0.1
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$D/mail/%u
mail_uid = $UID
mail_gid = $GID
first_valid_uid = 1
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid=$UID gid=$GID home=$D/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
`

// dovecot is a Dovecot of the test's own.
type dovecot struct {
	dir      string
	port     int
	uid, gid int
	seq      int
}

// startDovecot starts Dovecot in a throw-away directory on a free loopback
// port, and stops it when the test ends.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotBinary); err != nil {
		t.Fatalf("%s not found: install Dovecot (apt-get install dovecot-imapd; make test does it as root) to run this test", dovecotBinary)
	}
	// Not t.TempDir(): its path is too long for Dovecot's unix sockets.
	dir, err := os.MkdirTemp("", "sbdove")
	require.NoError(t, err)
	// The mail user must reach its Maildir below.
	require.NoError(t, os.Chmod(dir, 0o755))
	d := &dovecot{dir: dir, uid: os.Getuid(), gid: os.Getgid()}
	if d.uid == 0 {
		// Dovecot refuses to access mail as root.
		d.uid, d.gid = 65534, 65534
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	for _, sub := range []string{"run", "state", "mail"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o755))
	}
	require.NoError(t, os.Chown(filepath.Join(dir, "mail"), d.uid, d.gid))
	conf := strings.NewReplacer("$D", dir, "$PORT", strconv.Itoa(d.port), "$UID", strconv.Itoa(d.uid), "$GID", strconv.Itoa(d.gid)).Replace(dovecotConfig)
	confPath := filepath.Join(dir, "dovecot.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))

	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "dovecot.log")); err == nil {
				t.Logf("dovecot.log:\n%s", log)
			}
		}
		_ = os.RemoveAll(dir)
	})
	// Dovecot daemonises: the command returns once the master runs. Its
	// output goes to a file, not a pipe, which the daemon would hold open
	// and with it the wait for the command.
	out, err := os.Create(filepath.Join(dir, "start.log"))
	require.NoError(t, err)
	cmd := exec.Command(dovecotBinary, "-c", confPath)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.Close()
	if err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("start dovecot: %v: %s", err, b)
	}
	testkit.Eventually(t, wait, func() bool {
		c, err := net.Dial("tcp", d.addr())
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "dovecot never listened on %s", d.addr())
	return d
}

func (d *dovecot) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)) }

// stop ends the master, which ends its children, through its pid file.
func (d *dovecot) stop(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(d.dir, "run", "master.pid"))
	if err != nil {
		t.Logf("dovecot master pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Logf("dovecot master pid %q: %v", b, err)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// deliver puts raw into user's INBOX as a local delivery agent does: written
// to tmp/, then renamed into new/.
func (d *dovecot) deliver(t *testing.T, user string, raw []byte) {
	t.Helper()
	root := filepath.Join(d.dir, "mail", user)
	for _, p := range []string{root, filepath.Join(root, "cur"), filepath.Join(root, "new"), filepath.Join(root, "tmp")} {
		require.NoError(t, os.MkdirAll(p, 0o700))
		require.NoError(t, os.Chown(p, d.uid, d.gid))
	}
	d.seq++
	name := fmt.Sprintf("%d.M%dP%d.sbtest", time.Now().Unix(), d.seq, os.Getpid())
	tmp := filepath.Join(root, "tmp", name)
	require.NoError(t, os.WriteFile(tmp, raw, 0o600))
	require.NoError(t, os.Chown(tmp, d.uid, d.gid))
	require.NoError(t, os.Rename(tmp, filepath.Join(root, "new", name)))
}

// TestDovecot runs the connector against a real IMAP server: the backfill
// of a mail delivered before the mailbox exists, and a mail delivered while
// the connector waits in IDLE.
func TestDovecot(t *testing.T) {
	d := startDovecot(t)
	d.deliver(t, "alice", simpleMail("dove-1@customer.example", "Bob <Bob@Customer.Example>", "Hello Dovecot"))
	e := startConnector(t)
	mb := newMailbox("127.0.0.1", d.port, "alice", "secret", "")
	e.publishMailbox(mb)

	first := e.received(mb.ID, "dove-1@customer.example", 1).Msg
	require.Equal(t, "bob@customer.example", first.From.Identity)
	require.Equal(t, "Hello Dovecot", first.Subject)
	require.Equal(t, "dove-1@customer.example", first.ThreadKey)
	require.Equal(t, "Mail dove-1@customer.example.", strings.TrimSpace(first.Text))

	d.deliver(t, "alice", simpleMail("dove-2@customer.example", "Bob <bob@customer.example>", "Re: Hello Dovecot", "In-Reply-To: <dove-1@customer.example>"))
	second := e.received(mb.ID, "dove-2@customer.example", 1).Msg
	require.Equal(t, first.ThreadKey, second.ThreadKey)
	require.Len(t, e.inboundOf(mb.ID, "dove-1@customer.example"), 1)
}
