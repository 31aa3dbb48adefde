// Package proto holds treecast's protocol definitions (treecast/v1/*.proto) and regenerates
// their Go code, which is committed under treecast/v1 (package treecastv1).
//
// Regenerate after editing a .proto file:
//
//	go generate ./proto
//
// Generation runs protoc (the Debian package protobuf-compiler, version 3.21.12, which the
// generated headers name) with protoc-gen-go and protoc-gen-go-grpc at the versions go.mod
// pins in its tool directive, so every machine produces the same code. check-generated.sh
// regenerates into the tree and fails when the result differs from what is committed; CI
// runs it. A different protoc version changes only the version comment of the headers, which
// the check ignores (it prints a note).
//
// This package has no Go API of its own: import
// github.com/treecast/treecast/proto/treecast/v1.
package proto

//go:generate sh generate.sh
