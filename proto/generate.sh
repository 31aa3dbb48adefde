#!/bin/sh
# Regenerates the Go code of every .proto file under treecast/. protoc comes from the system
# (Debian: protobuf-compiler); the Go plugins are the versions pinned by go.mod's tool
# directive, built by `go tool -n`.
set -eu
cd "$(dirname "$0")"
command -v protoc >/dev/null 2>&1 || {
	echo "proto: protoc not found; install it (Debian: apt-get install protobuf-compiler)" >&2
	exit 1
}
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
find treecast -name '*.pb.go' -delete
protoc -I . \
	--plugin=protoc-gen-go="$gen_go" \
	--plugin=protoc-gen-go-grpc="$gen_grpc" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	$(find treecast -name '*.proto' | LC_ALL=C sort)
