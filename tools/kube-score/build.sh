#!/usr/bin/env bash
# Builds kube-score, the third-party manifest checker the suite runs over the overlays and the operator's children.
source "$(dirname "$0")/../lib.sh"
dest="$PHOENIX_TOOLS_DIR/kube-score-$KUBE_SCORE_VERSION"
if [[ -x "$dest/kube-score" ]]; then echo "$dest/kube-score"; exit 0; fi
log "building kube-score $KUBE_SCORE_VERSION"
GOBIN="$dest.build" go install "github.com/zegl/kube-score/cmd/kube-score@v$KUBE_SCORE_VERSION" >&2
mkdir -p "$dest"
mv "$dest.build/kube-score" "$dest/kube-score"
rm -rf "$dest.build"
echo "$dest/kube-score"
