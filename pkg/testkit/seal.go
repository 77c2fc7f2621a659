package testkit

import (
	"testing"

	"github.com/switchboard-oss/switchboard/pkg/seal"
)

// Keyring returns a keyring of one new random key, for components that
// seal or open secrets; components of one test that share secrets must
// share the keyring.
func Keyring(t testing.TB) *seal.Keyring {
	t.Helper()
	key, err := seal.NewKey("test")
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.NewKeyring(key.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
