#!/usr/bin/env bash
# `make tools`: build or install every real component, reusing the cache, and
# print where each binary is and what version it reports.
source "$(dirname "$0")/lib.sh"
start=$SECONDS
otelcol=$(bash "$TOOLS_SRC/otelcol/build.sh")
etcd=$(bash "$TOOLS_SRC/envtest/build.sh" etcd)
apiserver=$(bash "$TOOLS_SRC/envtest/build.sh" kube-apiserver)
manager=$(bash "$TOOLS_SRC/envtest/build.sh" kube-controller-manager)
scheduler=$(bash "$TOOLS_SRC/envtest/build.sh" kube-scheduler)
kwok=$(bash "$TOOLS_SRC/kwok/build.sh")
telemetrygen=$(bash "$TOOLS_SRC/telemetrygen/build.sh")
kube_score=$(bash "$TOOLS_SRC/kube-score/build.sh")
reference_go=$(bash "$TOOLS_SRC/reference-go/build.sh")
prometheus=$(bash "$TOOLS_SRC/prometheus/install.sh")
promtool=$(command -v promtool)
kubectl_bin=$(command -v kubectl || true)
[[ -n "$kubectl_bin" ]] || { log "kubectl is missing: install it (it ships on the machine image)"; exit 1; }

printf '%-24s %-70s %s\n' component path version
printf '%-24s %-70s %s\n' otelcol-phoenix "$otelcol" "$("$otelcol" --version | awk '{print $NF}')"
printf '%-24s %-70s %s\n' etcd "$etcd" "$("$etcd" --version | awk 'NR==1{print $3}')"
printf '%-24s %-70s %s\n' kube-apiserver "$apiserver" "$("$apiserver" --version | awk '{print $2}')"
printf '%-24s %-70s %s\n' kube-controller-manager "$manager" "$("$manager" --version | awk '{print $2}')"
printf '%-24s %-70s %s\n' kube-scheduler "$scheduler" "$("$scheduler" --version | awk '{print $2}')"
printf '%-24s %-70s %s\n' kwok "$kwok" "v$KWOK_VERSION"
printf '%-24s %-70s %s\n' telemetrygen "$telemetrygen" "v$TELEMETRYGEN_VERSION"
printf '%-24s %-70s %s\n' kube-score "$kube_score" "v$KUBE_SCORE_VERSION"
printf '%-24s %-70s %s\n' reference-go "$reference_go" "controller-runtime $(awk '$1 == "sigs.k8s.io/controller-runtime" {print $2}' "$TOOLS_SRC/../bench/reference-go/go.mod")"
printf '%-24s %-70s %s\n' prometheus "$prometheus" "$("$prometheus" --version 2>&1 | awk 'NR==1{print $3}')"
printf '%-24s %-70s %s\n' promtool "$promtool" "$("$promtool" --version 2>&1 | awk 'NR==1{print $3}')"
printf '%-24s %-70s %s\n' kubectl "$kubectl_bin" "$(kubectl version --client -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
log "tools ready in $((SECONDS - start))s (cache: $PHOENIX_TOOLS_DIR)"
