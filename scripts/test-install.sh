#!/usr/bin/env bash
# make install and make uninstall into a temporary PREFIX: the binary runs by name from
# PREFIX/bin, the completion scripts land where bash-completion, zsh and fish look, and
# uninstall removes exactly those four files. Uses the debug build (CONFIG=debug), so after
# `swift build` it builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$prefix" "$log"' EXIT
make --no-print-directory install PREFIX="$prefix" CONFIG=debug >"$log" 2>&1 || { cat "$log"; exit 1; }

expected="bin/cnnc
share/bash-completion/completions/cnnc
share/fish/vendor_completions.d/cnnc.fish
share/zsh/site-functions/_cnnc"
actual=$(cd "$prefix" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
if [ "$actual" != "$expected" ]; then
    printf 'test-install: installed files differ\nexpected:\n%s\nactual:\n%s\n' "$expected" "$actual"
    exit 1
fi
version=$(PATH="$prefix/bin:$PATH" cnnc --version)
case "$version" in
    "cnnc "*" (commit "*")") ;;
    *) echo "test-install: cnnc --version printed '$version'"; exit 1 ;;
esac
grep -q "_cnnc" "$prefix/share/bash-completion/completions/cnnc" || { echo "test-install: no bash completion function"; exit 1; }
grep -q "doctor" "$prefix/share/zsh/site-functions/_cnnc" || { echo "test-install: the zsh completion lacks doctor"; exit 1; }
grep -q "complete -c 'cnnc'" "$prefix/share/fish/vendor_completions.d/cnnc.fish" || { echo "test-install: no fish completion"; exit 1; }

make --no-print-directory uninstall PREFIX="$prefix" >/dev/null
left=$(cd "$prefix" && find . -type f)
if [ -n "$left" ]; then
    printf 'test-install: uninstall left files:\n%s\n' "$left"
    exit 1
fi
echo "test-install: make install and make uninstall PASS ($version)"
