#!/bin/sh
# Regenerates the protobuf Go code into the tree and fails when it differs from what is
# committed (or when generation adds or removes files). A different protoc version alone
# changes only the "protoc vX" lines of the generated headers: that difference is ignored,
# with a note. Only generated files (*.pb.go) are compared; other edits are left alone.
set -eu
cd "$(dirname "$0")"
sh generate.sh
gen='*.pb.go'
extra=$(git ls-files --others --exclude-standard -- "$gen")
gone=$(git ls-files --deleted -- "$gen")
if [ -n "$extra$gone" ]; then
	echo "proto: generation added or removed files; run 'go generate ./proto' and commit:" >&2
	printf '%s\n' $extra $gone >&2
	exit 1
fi
if git diff --quiet -- "$gen"; then
	echo "proto: generated code is up to date"
	exit 0
fi
if git diff --quiet -I '^//[[:space:]]+(-[[:space:]]+)?protoc[[:space:]]+v' -- "$gen"; then
	echo "proto: note: $(protoc --version) differs from the protoc the committed headers name; the code is otherwise identical"
	git checkout -- "$gen"
	exit 0
fi
echo "proto: committed generated code differs from what generation gives; run 'go generate ./proto' and commit:" >&2
git diff --stat -- "$gen" >&2
git diff -- "$gen" | head -100 >&2
exit 1
