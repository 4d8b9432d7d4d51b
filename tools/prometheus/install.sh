#!/usr/bin/env bash
# Prometheus and promtool come from Debian's `prometheus` package.
source "$(dirname "$0")/../lib.sh"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  log "installing Debian's prometheus package"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show prometheus >/dev/null 2>&1; then $sudo_cmd apt-get update -qq >&2; fi
  $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >&2
fi
command -v prometheus
