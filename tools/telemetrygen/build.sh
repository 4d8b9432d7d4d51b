#!/usr/bin/env bash
# Builds telemetrygen, the upstream OTLP load generator that bench/ compares LoadSim against.
source "$(dirname "$0")/../lib.sh"
dest="$PHOENIX_TOOLS_DIR/telemetrygen-$TELEMETRYGEN_VERSION"
if [[ -x "$dest/telemetrygen" ]]; then echo "$dest/telemetrygen"; exit 0; fi
log "building telemetrygen $TELEMETRYGEN_VERSION"
GOBIN="$dest.build" go install \
  "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION" >&2
mkdir -p "$dest"
mv "$dest.build/telemetrygen" "$dest/telemetrygen"
rm -rf "$dest.build"
echo "$dest/telemetrygen"
