package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Role is what an identity may do.
type Role string

// The roles.
const (
	RoleNode     Role = "node"     // an agent: Push and Fetch between agents
	RoleOperator Role = "operator" // a user of the cluster: Submit, cancel, delete
	// RoleMonitor reads an agent's HTTP address only (metrics, events, the live page): the
	// certificate of a Prometheus scraper or a dashboard, which may call no RPC.
	RoleMonitor Role = "monitor"
)

// ParseRole parses "node", "operator" or "monitor".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleNode, RoleOperator, RoleMonitor:
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q is not node, operator or monitor", ErrIdentity, s)
}

// Errors of the package.
var (
	// ErrIdentity: a certificate, key or name is missing, malformed, or not of the cluster.
	ErrIdentity = errors.New("identity: bad identity")
	// ErrExists: a file would be overwritten.
	ErrExists = errors.New("identity: file exists")
)

// Validity of what InitCA and Issue make.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

// CAFiles returns the paths of the CA certificate and key in dir.
func CAFiles(dir string) (cert, key string) {
	return filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
}

// Files returns the paths of name's certificate and key in dir.
func Files(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
}

// ValidName reports whether name may name an identity: 1 to 63 letters, digits, '-' or '.',
// starting with a letter or digit (a DNS name, as agents are dialled by name).
func ValidName(name string) bool {
	if name == "" || len(name) > 63 || name[0] == '-' || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// InitCA makes a new cluster CA in dir: ca.pem and ca.key. It refuses to overwrite an
// existing CA ([ErrExists]).
func InitCA(dir string) error {
	certFile, keyFile := CAFiles(dir)
	if err := refuseExisting(certFile, keyFile); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "treecast cluster CA", Organization: []string{"treecast"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writePair(dir, certFile, keyFile, der, key)
}

// Issue makes a certificate for identity name with role, signed by the CA in dir, as
// DIR/NAME.pem and DIR/NAME.key. hosts are extra names the holder serves on (IP addresses
// or DNS names). It refuses to overwrite ([ErrExists]).
func Issue(dir, name string, role Role, hosts []string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: name %q: use letters, digits, '-' and '.'", ErrIdentity, name)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	caCert, caKey, err := readCA(dir)
	if err != nil {
		return err
	}
	certFile, keyFile := Files(dir, name)
	if err := refuseExisting(certFile, keyFile); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{string(role)}, Organization: []string{"treecast"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name},
	}
	if role == RoleNode {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(dir, certFile, keyFile, der, key)
}

// NewGossipKey writes a new random 32-byte gossip key (AES-256-GCM) to DIR/gossip.key, in
// base64, mode 0600. It refuses to overwrite ([ErrExists]).
func NewGossipKey(dir string) (string, error) {
	path := filepath.Join(dir, "gossip.key")
	if err := refuseExisting(path); err != nil {
		return "", err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600)
}

// ReadGossipKeys reads a gossip key file: one key per line (base64 of 16, 24 or 32 bytes;
// blank lines and lines starting with '#' are skipped), the first the key used to send.
func ReadGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return nil, fmt.Errorf("%w: %s line %d: not the base64 of a 16, 24 or 32 byte key", ErrIdentity, path, n+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no key", ErrIdentity, path)
	}
	return keys, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, p)
		}
	}
	return nil
}

func writePair(dir, certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeNew creates path (failing if it exists) with data.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certFile, keyFile := CAFiles(dir)
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA certificate: %w (run 'treecast certs init' first)", ErrIdentity, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA key: %w", ErrIdentity, err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, fmt.Errorf("%w: %s or %s is not PEM", ErrIdentity, certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrIdentity, certFile, err)
	}
	key, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrIdentity, keyFile, err)
	}
	return cert, key, nil
}
