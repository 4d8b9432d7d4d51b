#!/usr/bin/env bash
# Builds otelcol-phoenix with the OpenTelemetry Collector Builder, once per version.
source "$(dirname "$0")/../lib.sh"
dest="$PHOENIX_TOOLS_DIR/otelcol-$OTELCOL_VERSION"
bin="$dest/otelcol-phoenix"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
work="$dest.build"
rm -rf "$work"; mkdir -p "$work"
log "installing builder v$OTELCOL_VERSION"
GOBIN="$work/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
sed -e "s|@OTELCOL_VERSION@|$OTELCOL_VERSION|g" \
    -e "s|@OTELCOL_STABLE_VERSION@|$OTELCOL_STABLE_VERSION|g" \
    -e "s|@OUTPUT_PATH@|$work/src|g" \
    "$TOOLS_SRC/otelcol/manifest.yaml.in" > "$work/manifest.yaml"
log "building otelcol-phoenix $OTELCOL_VERSION (several minutes on a cold cache)"
"$work/bin/builder" --config "$work/manifest.yaml" >&2
mkdir -p "$dest"
mv "$work/src/otelcol-phoenix" "$bin"
rm -rf "$work"
echo "$bin"
