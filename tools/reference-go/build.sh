#!/usr/bin/env bash
# Builds bench/reference-go, the controller-runtime peer of bench/operator_scale.py.
# Its cache entry is named by a hash of its sources, so an edit rebuilds it.
source "$(dirname "$0")/../lib.sh"
src="$TOOLS_SRC/../bench/reference-go"
hash=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)
dest="$PHOENIX_TOOLS_DIR/reference-go-$hash"
if [[ -x "$dest/reference-go" ]]; then echo "$dest/reference-go"; exit 0; fi
log "building reference-go $hash"
rm -rf "$PHOENIX_TOOLS_DIR"/reference-go-*
mkdir -p "$dest.build"
(cd "$src" && go build -o "$dest.build/reference-go" .) >&2
mv "$dest.build" "$dest"
echo "$dest/reference-go"
