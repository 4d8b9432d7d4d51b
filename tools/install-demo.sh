#!/usr/bin/env bash
# `make demo`'s share of `make tools`: only what `phoenix run --local` runs, the collector and Prometheus.
source "$(dirname "$0")/lib.sh"
start=$SECONDS
otelcol=$(bash "$TOOLS_SRC/otelcol/build.sh")
prometheus=$(bash "$TOOLS_SRC/prometheus/install.sh")
printf '%-24s %-70s %s\n' component path version
printf '%-24s %-70s %s\n' otelcol-phoenix "$otelcol" "$("$otelcol" --version | awk '{print $NF}')"
printf '%-24s %-70s %s\n' prometheus "$prometheus" "$("$prometheus" --version 2>&1 | awk 'NR==1{print $3}')"
log "demo tools ready in $((SECONDS - start))s (cache: $PHOENIX_TOOLS_DIR)"
