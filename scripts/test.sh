#!/usr/bin/env bash
# Run the whole test suite: unit, property, integration (root, real namespaces) and
# end-to-end suites (real dockerd, podman, CNI plugins). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
rustup component add rustfmt >/dev/null 2>&1 || true
cargo build --workspace --bins
cargo test --workspace --no-fail-fast -- --nocapture 2>&1 | tee target/test.log
