#!/usr/bin/env bash
# Builds kwok, which plays the test bed's nodes: it schedules Pods onto fake
# nodes and drives them to Running, Ready and, for Jobs, Succeeded.
source "$(dirname "$0")/../lib.sh"
dest="$PHOENIX_TOOLS_DIR/kwok-$KWOK_VERSION"
if [[ -x "$dest/kwok" ]]; then echo "$dest/kwok"; exit 0; fi
log "building kwok $KWOK_VERSION"
GOBIN="$dest.build" go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" >&2
mkdir -p "$dest"
mv "$dest.build/kwok" "$dest/kwok"
rm -rf "$dest.build"
echo "$dest/kwok"
