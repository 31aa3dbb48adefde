// Package identity is who is who in a treecast cluster: the cluster's certificate authority,
// the certificates it issues to nodes and operators, the TLS configurations every gRPC
// connection uses (mutual TLS 1.3), and the gossip encryption key.
//
// # Names and roles
//
// Every certificate names one identity (its Subject common name, also a DNS name of the
// certificate) and carries one role in its organizational unit: "node" for an agent, which
// may Push and Fetch to other agents and serve them, or "operator" for a person or program
// that submits, cancels and deletes pushes. An agent's name in the cluster is the name of its
// certificate: a peer that claims another name is refused.
//
// # Files
//
// [InitCA] makes DIR/ca.pem and DIR/ca.key (ECDSA P-256, ten years). [Issue] makes
// DIR/NAME.pem and DIR/NAME.key for one identity (one year), with the hosts it serves on as
// extra names. [NewGossipKey] makes DIR/gossip.key: 32 random bytes in base64 for memberlist's
// AES-GCM encryption; [ReadGossipKeys] reads such a file, one key per line, the first the
// one used to send (the others are still accepted: a key rotation installs the new key
// second everywhere, then first everywhere, then removes the old one). Private keys are
// written with mode 0600 and never overwritten.
//
// # TLS
//
// [Load] reads a certificate, its key and the CA, and [Source] re-reads them when their
// files change (checked at most once a second, at a handshake), so certificates rotate
// without a restart. [Source.ServerConfig] requires and verifies a client certificate of the
// cluster; [Source.ClientConfig] presents the source's certificate and verifies that the
// server's chains to the CA and, when a name is given, names that identity. Only TLS 1.3 is
// offered. [FromContext] returns the verified peer [Identity] of a gRPC call.
package identity
