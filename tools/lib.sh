# Shared helpers for the tool recipes: cache location and pinned versions.
set -euo pipefail
TOOLS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$TOOLS_SRC/versions.env"
PHOENIX_TOOLS_DIR="${PHOENIX_TOOLS_DIR:-$HOME/.cache/phoenix/tools}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$PHOENIX_TOOLS_DIR"

log() { printf '[tools] %s\n' "$*" >&2; }
