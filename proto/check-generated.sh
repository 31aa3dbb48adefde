#!/bin/sh
# Regenerates the protobuf Go code into the tree and fails when it differs from what is
# committed (or when generation adds or removes files). A different protoc version alone
# changes only the "// 	protoc v..." header comment: that difference is ignored, with a note.
set -eu
cd "$(dirname "$0")"
sh generate.sh
extra=$(git ls-files --others --exclude-standard -- .)
gone=$(git ls-files --deleted -- .)
if [ -n "$extra$gone" ]; then
	echo "proto: generation added or removed files; run 'go generate ./proto' and commit:" >&2
	printf '%s\n' $extra $gone >&2
	exit 1
fi
if git diff --quiet -- .; then
	echo "proto: generated code is up to date"
	exit 0
fi
if git diff --quiet -I '^//[[:space:]]+protoc[[:space:]]+v' -- .; then
	echo "proto: note: $(protoc --version) differs from the protoc the committed headers name; the code is otherwise identical"
	git checkout -- .
	exit 0
fi
echo "proto: committed generated code differs from what generation gives; run 'go generate ./proto' and commit:" >&2
git diff --stat -- . >&2
git diff -- . | head -100 >&2
exit 1
