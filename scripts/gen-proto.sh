#!/usr/bin/env bash
# Regenerates the Go code of the gRPC face (internal/gateway/grpcapi/gen)
# from proto/wharf/v1/wharf.proto. CI does not run it: the generated code is
# committed, so run it after changing the .proto and commit the result.
#
# Needs, on PATH:
#   protoc                 Debian: apt-get install protobuf-compiler
#                          (3.21; it brings google/protobuf/struct.proto)
#   protoc-gen-go          go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   protoc-gen-connect-go  go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
# (keep the two versions in step with go.mod).
set -euo pipefail

cd "$(dirname "$0")/.."

for tool in protoc protoc-gen-go protoc-gen-connect-go; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "gen-proto: $tool is not on PATH; see the top of $0" >&2
		exit 1
	fi
done

rm -rf internal/gateway/grpcapi/gen
protoc -I proto \
	--go_out=. --go_opt=module=github.com/wharfmq/wharf \
	--connect-go_out=. --connect-go_opt=module=github.com/wharfmq/wharf \
	proto/wharf/v1/wharf.proto
gofmt -l internal/gateway/grpcapi/gen
