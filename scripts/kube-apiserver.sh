#!/usr/bin/env bash
# Builds kube-apiserver v1.20.2 from Debian bookworm's `kubernetes` source package into ~/.cache/mlops, for the
# Kubernetes target's tests (a real API server; no kubelet). Does nothing when the binary is already there.
# About 13 minutes cold on 2 cores, 1.3 GB of build tree (removed afterwards), a 110 MB binary.
set -euo pipefail
out="${MLOPS_CACHE:-$HOME/.cache/mlops}/kube-apiserver-v1.20.2"
[ -x "$out" ] && exit 0

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ] && ! grep -q deb-src "$sources"; then
  $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  golang-go jq rsync make dpkg-dev golang-github-modern-go-reflect2-dev >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq kubernetes
cd kubernetes-*/
# The vendored reflect2 v1.0.1 crashes under Go >= 1.18 as soon as a custom resource is stored; Debian's 1.0.2 does not.
find vendor/github.com/modern-go/reflect2 -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s \
  vendor/github.com/modern-go/reflect2/
GOFLAGS=-mod=vendor make WHAT=cmd/kube-apiserver
mkdir -p "$(dirname "$out")"
cp _output/bin/kube-apiserver "$out.tmp"
mv "$out.tmp" "$out"
"$out" --version
