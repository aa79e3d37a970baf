#!/bin/sh
# Regenerate netctl's shell completions from the CLI definition.
# Usage: contrib/completions/generate.sh [path/to/netctl]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
netctl=${1:-$here/../../target/debug/netctl}
"$netctl" completion bash > "$here/netctl.bash"
"$netctl" completion zsh > "$here/_netctl"
"$netctl" completion fish > "$here/netctl.fish"
echo "wrote $here/netctl.bash $here/_netctl $here/netctl.fish"
