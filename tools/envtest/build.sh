#!/usr/bin/env bash
# Builds the test bed's control plane: etcd, kube-apiserver, kube-scheduler and
# kube-controller-manager from the Go module proxy, each in its own wrapper
# module, once per version.
source "$(dirname "$0")/../lib.sh"

build_etcd() {
  local dest="$PHOENIX_TOOLS_DIR/etcd-$ETCD_VERSION" work
  if [[ -x "$dest/etcd" ]]; then echo "$dest/etcd"; return; fi
  work="$dest.build"; rm -rf "$work"; mkdir -p "$work"
  cp "$TOOLS_SRC/envtest/etcd/main.go" "$work/"
  (
    cd "$work"
    go mod init phoenix.io/tools/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
    log "building etcd $ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -o "$dest/etcd" \
      -ldflags "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" . >&2
  )
  rm -rf "$work"
  echo "$dest/etcd"
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging paths; a wrapper module must replace each with the published
# v0.<minor>.<patch> release instead. The list comes from that release's go.mod.
kube_staging_replaces() {
  local gomod staging_version="v0.${KUBERNETES_VERSION#1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" |
    while read -r mod; do echo "replace $mod => $mod $staging_version"; done
}

# kube-apiserver, kube-controller-manager or kube-scheduler, from one Kubernetes release.
build_kube() {
  local name=$1 dest="$PHOENIX_TOOLS_DIR/$1-$KUBERNETES_VERSION" work minor
  if [[ -x "$dest/$name" ]]; then echo "$dest/$name"; return; fi
  work="$dest.build"; rm -rf "$work"; mkdir -p "$work"
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  (
    cd "$work"
    go mod init "phoenix.io/tools/$name" >/dev/null 2>&1
    kube_staging_replaces >> go.mod
    go get "k8s.io/kubernetes@v$KUBERNETES_VERSION" >&2
    log "building $name $KUBERNETES_VERSION (among the longest builds: ~10 min on 2 cores)"
    local pkg=k8s.io/component-base/version
    CGO_ENABLED=0 go build -trimpath -o "$dest/$name" -ldflags "-s -w \
      -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor \
      -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
      "k8s.io/kubernetes/cmd/$name" >&2
  )
  rm -rf "$work"
  echo "$dest/$name"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  kube-apiserver | kube-controller-manager | kube-scheduler) build_kube "$1" ;;
  all) build_etcd; for name in kube-apiserver kube-controller-manager kube-scheduler; do build_kube "$name"; done ;;
  *) echo "usage: $0 [etcd|kube-apiserver|kube-controller-manager|kube-scheduler|all]" >&2; exit 2 ;;
esac
