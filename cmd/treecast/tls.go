package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/treecast/treecast/node/identity"
)

// The flags that secure a command's gRPC connections. The agent and every client command
// take them; each defaults to its environment variable.
const (
	flagTLSCert  = "tls-cert"
	flagTLSKey   = "tls-key"
	flagTLSCA    = "tls-ca"
	flagInsecure = "insecure"
)

// addTLSFlags registers --tls-cert, --tls-key, --tls-ca and --insecure on c. role says whose
// certificate the flags name (node for the agent, operator for a client).
func addTLSFlags(c *cobra.Command, role identity.Role) {
	f := c.Flags()
	f.String(flagTLSCert, os.Getenv("TREECAST_TLS_CERT"), fmt.Sprintf("certificate (PEM) of this %s, from 'treecast certs issue' (env TREECAST_TLS_CERT)", role))
	f.String(flagTLSKey, os.Getenv("TREECAST_TLS_KEY"), "private key (PEM) of the certificate (env TREECAST_TLS_KEY)")
	f.String(flagTLSCA, os.Getenv("TREECAST_TLS_CA"), "the cluster's CA certificate (PEM) (env TREECAST_TLS_CA)")
	insec, _ := strconv.ParseBool(os.Getenv("TREECAST_INSECURE"))
	f.Bool(flagInsecure, insec, "plaintext gRPC without certificates: anyone who reaches the port is trusted (env TREECAST_INSECURE)")
}

// errNoTLS is the error of a command given neither certificates nor --insecure.
var errNoTLS = errors.New("no TLS certificate: give --tls-cert, --tls-key and --tls-ca (or TREECAST_TLS_CERT, TREECAST_TLS_KEY, TREECAST_TLS_CA; 'treecast certs' makes them), or --insecure for plaintext")

// tlsSource loads the certificate the TLS flags of c name; it returns nil with --insecure.
func tlsSource(c *cobra.Command) (*identity.Source, error) {
	f := c.Flags()
	insec, _ := f.GetBool(flagInsecure)
	cert, _ := f.GetString(flagTLSCert)
	key, _ := f.GetString(flagTLSKey)
	ca, _ := f.GetString(flagTLSCA)
	if insec {
		if cert != "" || key != "" || ca != "" {
			return nil, usageErr(fmt.Errorf("--insecure with TLS files: choose one"))
		}
		return nil, nil
	}
	if cert == "" || key == "" || ca == "" {
		return nil, usageErr(errNoTLS)
	}
	src, err := identity.Load(cert, key, ca)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return src, nil
}

// clientCreds are the transport credentials of a client command: mutual TLS with the
// flags' certificate (the agent must be a node of the same CA), or plaintext with --insecure.
func clientCreds(c *cobra.Command) (credentials.TransportCredentials, error) {
	src, err := tlsSource(c)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return insecure.NewCredentials(), nil
	}
	return credentials.NewTLS(src.ClientConfig("")), nil
}
