#!/usr/bin/env bash
# Regenerates plugins/internal/pb from plugins/proto/connector.proto.
# Needs protoc (Debian: protobuf-compiler, 3.21), protoc-gen-go and
# protoc-gen-go-grpc on PATH; `make proto` installs them first.
set -euo pipefail
cd "$(dirname "$0")"
protoc -I proto \
  --go_out=internal/pb --go_opt=paths=source_relative \
  --go-grpc_out=internal/pb --go-grpc_opt=paths=source_relative \
  proto/connector.proto
