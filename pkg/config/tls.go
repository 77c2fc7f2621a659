package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// TLS is the client side of a TLS connection, from files as Kubernetes
// mounts them out of a Secret: the CA bundle that signs the server's
// certificate (empty: the system's CAs), an optional client certificate
// with its key, and the name the server's certificate must carry. Kafka
// and Redis share it.
type TLS struct {
	// CAFile is a PEM bundle of CA certificates.
	CAFile string
	// CertFile and KeyFile are the client certificate and its private
	// key, PEM; both or neither.
	CertFile string
	KeyFile  string
	// ServerName replaces the host name of the address in the check of
	// the server's certificate.
	ServerName string
}

// RegisterFlags declares <group>.ca-file, <group>.cert-file,
// <group>.key-file and <group>.server-name under prefix; server names the
// peer in the help texts, such as "the Kafka brokers".
func (t *TLS) RegisterFlags(prefix, group, server string, f *flag.FlagSet) {
	f.StringVar(&t.CAFile, prefix+group+".ca-file", "", "PEM file of the CA certificates that sign the certificates of "+server+" (a bundle may hold several). Empty: the system's CAs, which suit public services.")
	f.StringVar(&t.CertFile, prefix+group+".cert-file", "", "PEM file of the client certificate presented to "+server+", for servers that authenticate clients by certificate (mutual TLS), with -"+prefix+group+".key-file.")
	f.StringVar(&t.KeyFile, prefix+group+".key-file", "", "PEM file of the private key of -"+prefix+group+".cert-file.")
	f.StringVar(&t.ServerName, prefix+group+".server-name", "", "Name the certificates of "+server+" must carry, when it differs from the host names in the addresses (servers reached by IP address or through a tunnel). Empty: the host name of each address.")
}

// Given reports whether any of the settings is set.
func (t TLS) Given() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// Check records in ck what is wrong with the files of group (such as
// "kafka.tls"): unreadable, holding no certificate, a certificate without
// its key, a key that is not the certificate's, a certificate expired.
func (t TLS) Check(ck *Checker, group string) {
	if t.CAFile != "" {
		_, err := loadCAs(t.CAFile)
		ck.Check(err == nil, group+".ca-file", fmt.Sprint(err), "set the path of a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		ck.Check(false, group+".key-file", "is empty while -"+ck.prefix+group+".cert-file is set", "set the file of the client certificate's private key, or neither")
	case t.CertFile == "" && t.KeyFile != "":
		ck.Check(false, group+".cert-file", "is empty while -"+ck.prefix+group+".key-file is set", "set the file of the client certificate, or neither")
	case t.CertFile != "":
		_, err := loadKeyPair(t.CertFile, t.KeyFile, time.Now())
		ck.Check(err == nil, group+".cert-file", fmt.Sprint(err), "set a PEM certificate and, in -"+ck.prefix+group+".key-file, its PEM private key")
	}
}

// Config builds the TLS configuration: TLS 1.2 at least, the server's
// certificate checked against the CA bundle (or the system's CAs), the
// client certificate presented when the server asks for one.
func (t TLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, err := loadKeyPair(t.CertFile, t.KeyFile, time.Now())
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// loadCAs reads a PEM bundle into a pool; a file without any certificate
// is an error, not an empty pool that would trust nothing in silence.
func loadCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d does not parse: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// loadKeyPair reads a certificate and its key and checks that they match
// and that the certificate is valid at now.
func loadKeyPair(certFile, keyFile string, now time.Time) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("a client certificate needs both its certificate and its key file")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot be read: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key file cannot be read: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s with key %s: %s", certFile, keyFile, strings.TrimPrefix(err.Error(), "tls: "))
	}
	if leaf := pair.Leaf; leaf != nil && now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("%s expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return pair, nil
}
