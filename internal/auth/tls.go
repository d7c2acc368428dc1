package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertSource holds a certificate with its key and a CA bundle loaded from
// files, and reloads them when the files change (Refresh, called on a
// timer) or when asked (Reload, on SIGHUP). A reload that fails keeps the
// previous certificates. Handshakes read the current ones through the
// tls.Configs it returns, so a renewed certificate is used by the next
// connection without a restart. It is safe for concurrent use.
type CertSource struct {
	certFile, keyFile, caFile string

	mu    sync.RWMutex
	cert  *tls.Certificate
	pool  *x509.CertPool // nil: the system's roots
	stamp [3]fileStamp   // of the files when last loaded
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewCertSource loads certFile and keyFile (both required) and caFile
// (optional: without it peers are verified against the system's roots).
func NewCertSource(certFile, keyFile, caFile string) (*CertSource, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	c := &CertSource{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

func (c *CertSource) stamps() [3]fileStamp {
	return [3]fileStamp{stampOf(c.certFile), stampOf(c.keyFile), stampOf(c.caFile)}
}

// Reload loads the files again. On error the previous certificates stay
// in use.
func (c *CertSource) Reload() error {
	st := c.stamps()
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	var pool *x509.CertPool
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return fmt.Errorf("read TLS CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS CA file %s holds no PEM certificate", c.caFile)
		}
	}
	c.mu.Lock()
	c.cert, c.pool, c.stamp = &cert, pool, st
	c.mu.Unlock()
	return nil
}

// Refresh reloads the files if any of them changed since they were last
// loaded. It reports whether it reloaded, and the error of a reload that
// failed.
func (c *CertSource) Refresh() (bool, error) {
	st := c.stamps()
	c.mu.RLock()
	same := st == c.stamp
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	if err := c.Reload(); err != nil {
		// Do not try the same broken files again and again.
		c.mu.Lock()
		c.stamp = st
		c.mu.Unlock()
		return false, err
	}
	return true, nil
}

func (c *CertSource) current() (*tls.Certificate, *x509.CertPool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, c.pool
}

// Leaf returns the current certificate, parsed.
func (c *CertSource) Leaf() *x509.Certificate {
	cert, _ := c.current()
	return cert.Leaf
}

// ServerConfig returns the configuration of a TLS listener: the current
// certificate, and with clientAuth, client certificates required and
// verified against the CA bundle.
func (c *CertSource) ServerConfig(clientAuth bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := c.current()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
			}
			if clientAuth {
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
				cfg.ClientCAs = pool
			}
			return cfg, nil
		},
	}
}

// ClientConfig returns the configuration of a TLS dial to serverName:
// the server verified against the CA bundle, the current certificate
// presented when the server asks for one.
func (c *CertSource) ClientConfig(serverName string) *tls.Config {
	_, pool := c.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := c.current()
			return cert, nil
		},
	}
}
