#!/usr/bin/env bash
# Release binaries: one static kinehook per platform in dist/, plus
# dist/SHA256SUMS. `make release` runs it; .goreleaser.yaml describes the
# same build for goreleaser users.
#
#   VERSION=v1.2.3 scripts/release.sh                 # every platform
#   TARGETS="linux/amd64" scripts/release.sh          # a subset
#
# VERSION defaults to `git describe`, COMMIT to the short HEAD; both are
# stamped into the binary (`kinehook version`, the deliveries' User-Agent).
# CGO_ENABLED=0: modernc.org/sqlite is pure Go, so every target
# cross-compiles from any machine and Linux binaries are static.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
TARGETS=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
DIST=${DIST:-dist}
LDFLAGS="-s -w -X github.com/kinehook/kinehook/internal/buildinfo.version=${VERSION} -X github.com/kinehook/kinehook/internal/buildinfo.commit=${COMMIT}"

case $VERSION in
  *[!A-Za-z0-9._+-]*|'') echo "release: VERSION \"$VERSION\" must be letters, digits and . _ + - only" >&2; exit 2 ;;
esac

rm -rf "$DIST"
mkdir -p "$DIST"
for target in $TARGETS; do
  os=${target%/*}
  arch=${target#*/}
  ext=
  [[ $os == windows ]] && ext=.exe
  out="kinehook_${VERSION}_${os}_${arch}${ext}"
  echo "release: $out"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath -ldflags="$LDFLAGS" -o "$DIST/$out" ./cmd/kinehook
done

(
  cd "$DIST"
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum kinehook_* > SHA256SUMS
  else
    shasum -a 256 kinehook_* > SHA256SUMS
  fi
)
echo "release: $DIST/SHA256SUMS"
cat "$DIST/SHA256SUMS"
