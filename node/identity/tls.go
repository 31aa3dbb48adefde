package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Identity is a verified peer: the name and role of its certificate.
type Identity struct {
	Name string
	Role Role
}

// FromCert reads the identity of a certificate of the cluster: its common name, which must
// be a valid name, and its role, the organizational unit.
func FromCert(c *x509.Certificate) (Identity, error) {
	if !ValidName(c.Subject.CommonName) {
		return Identity{}, fmt.Errorf("%w: certificate name %q", ErrIdentity, c.Subject.CommonName)
	}
	for _, ou := range c.Subject.OrganizationalUnit {
		if r, err := ParseRole(ou); err == nil {
			return Identity{Name: c.Subject.CommonName, Role: r}, nil
		}
	}
	return Identity{}, fmt.Errorf("%w: certificate of %q carries no role", ErrIdentity, c.Subject.CommonName)
}

// FromContext returns the verified identity of the peer of a gRPC call over mutual TLS.
func FromContext(ctx context.Context) (Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	id, err := FromCert(ti.State.VerifiedChains[0][0])
	return id, err == nil
}

// Source is a certificate, its key and the cluster CA, read from files and read again when
// the files change (their size or modification time; checked at most once a second, when a
// connection is made). A reload that fails keeps what was loaded, so a half-written file
// never breaks running connections. Safe for concurrent use.
type Source struct {
	certFile, keyFile, caFile string

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cert    *tls.Certificate
	pool    *x509.CertPool
	self    Identity
}

// Load reads certFile, keyFile and caFile. The certificate must chain to the CA and carry a
// name and a role.
func Load(certFile, keyFile, caFile string) (*Source, error) {
	s := &Source{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Self is the identity of the source's own certificate (as last loaded).
func (s *Source) Self() Identity {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

func (s *Source) stampNow() string {
	st := ""
	for _, f := range []string{s.certFile, s.keyFile, s.caFile} {
		if fi, err := os.Stat(f); err == nil {
			st += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return st
}

func (s *Source) reload() error {
	stamp := s.stampNow()
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	caPEM, err := os.ReadFile(s.caFile)
	if err != nil {
		return fmt.Errorf("%w: CA: %w", ErrIdentity, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%w: %s holds no certificate", ErrIdentity, s.caFile)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: %s does not chain to %s: %w", ErrIdentity, s.certFile, s.caFile, err)
	}
	self, err := FromCert(leaf)
	if err != nil {
		return err
	}
	cert.Leaf = leaf
	s.mu.Lock()
	s.cert, s.pool, s.self, s.stamp, s.checked = &cert, pool, self, stamp, time.Now()
	s.mu.Unlock()
	return nil
}

// refresh reloads the files if they changed since the last check (at most once a second).
func (s *Source) refresh() {
	s.mu.Lock()
	due := time.Since(s.checked) >= time.Second
	if due {
		s.checked = time.Now()
	}
	old := s.stamp
	s.mu.Unlock()
	if due && s.stampNow() != old {
		_ = s.reload() // on failure keep the last good files
	}
}

func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.pool
}

// verify checks a peer's certificate chain against the current CA for usage, and returns its
// identity.
func (s *Source) verify(raw [][]byte, usage x509.ExtKeyUsage) (Identity, error) {
	if len(raw) == 0 {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrIdentity)
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
		}
		certs[i] = c
	}
	_, pool := s.current()
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return FromCert(certs[0])
}

// ServerConfig is the TLS configuration of a server of the cluster: TLS 1.3, this source's
// certificate, and a client certificate of the cluster required (any role; the server
// authorizes by role per call).
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
}

// ClientConfig is the TLS configuration of a client of the cluster: TLS 1.3, this source's
// certificate presented, and the server's verified against the current CA. The server must
// be a node; when name is not empty its certificate must name that identity (an agent
// dialled by member name).
func (s *Source) ClientConfig(name string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		// The chain is verified below against the CA of the moment (rotation), and the
		// name against the identity expected, not against the dialled address.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			id, err := s.verify(raw, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if id.Role != RoleNode {
				return fmt.Errorf("%w: server %q has role %s, not node", ErrIdentity, id.Name, id.Role)
			}
			if name != "" && id.Name != name {
				return fmt.Errorf("%w: server certificate names %q, not %q", ErrIdentity, id.Name, name)
			}
			return nil
		},
	}
}

// Sign signs data (its SHA-256) with the source's private key, and returns the signature and
// the DER of the certificate a verifier checks it with.
func (s *Source) Sign(data []byte) (sig, certDER []byte, err error) {
	cert, _ := s.current()
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the private key cannot sign", ErrIdentity)
	}
	sum := sha256.Sum256(data)
	sig, err = signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, nil, err
	}
	return sig, cert.Certificate[0], nil
}

// VerifySignature checks that sig signs data with the key of the certificate certDER, and
// that the certificate chains to the current CA; it returns the certificate's identity.
func (s *Source) VerifySignature(certDER, data, sig []byte) (Identity, error) {
	id, err := s.verify([][]byte{certDER}, x509.ExtKeyUsageAny)
	if err != nil {
		return id, err
	}
	c, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	sum := sha256.Sum256(data)
	if !ok || !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return Identity{}, fmt.Errorf("%w: signature of %q does not verify", ErrIdentity, id.Name)
	}
	return id, nil
}
