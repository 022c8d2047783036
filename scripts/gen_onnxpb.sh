#!/bin/sh
# Regenerates models/onnx/internal/onnxpb/onnx.pb.go from Debian's onnx.proto
# (python3-onnx 1.12, IR version 8) with protoc (protobuf-compiler) and
# protoc-gen-go v1.36.11 (the google.golang.org/protobuf version in go.sum).
#   . scripts/env.sh && sh scripts/gen_onnxpb.sh
set -eu
cd "$(dirname "$0")/.."
PROTO_DIR=${ONNX_PROTO_DIR:-/usr/lib/python3/dist-packages/onnx}
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
GOBIN="$BIN" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
OUT=models/onnx/internal/onnxpb
protoc --plugin=protoc-gen-go="$BIN/protoc-gen-go" -I "$PROTO_DIR" \
  --go_out="$OUT" --go_opt=paths=source_relative \
  --go_opt=Monnx.proto=github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb \
  "$PROTO_DIR/onnx.proto"
