#!/usr/bin/env bash
# Runs every Go fuzz target in the module, one at a time, each for FUZZTIME.
#
#   scripts/fuzz.sh                 every target in ./..., 60s each
#   FUZZTIME=10m scripts/fuzz.sh    longer
#   FUZZ_MATCH=Host scripts/fuzz.sh only targets whose name matches (grep -E)
#   scripts/fuzz.sh ./internal/...  only these packages
#   scripts/fuzz.sh -l              list the targets and exit
#
# Targets are found with `go test -list '^Fuzz'`, so a new Fuzz function is
# picked up without editing this file. New failing inputs are written by Go
# to <package>/testdata/fuzz/<Target>/; commit them with the fix so they stay
# regression tests. Exits non-zero if any target fails or a package does not
# build.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-60s}"
FUZZ_MATCH="${FUZZ_MATCH:-}"
list_only=0
if [[ "${1:-}" == "-l" ]]; then
  list_only=1
  shift
fi
pkgs=("$@")
[[ ${#pkgs[@]} -eq 0 ]] && pkgs=(./...)

# `go test -list` prints each package's matching names, then a result line
# ("ok  <pkg> ...", "?  <pkg> [no test files]" or "FAIL <pkg> ...").
listing=$(go test -list '^Fuzz' "${pkgs[@]}" 2>&1)
list_status=$?

targets=()
build_failures=()
pending=()
while IFS= read -r line; do
  case "$line" in
    Fuzz*)
      pending+=("${line%% *}")
      ;;
    ok*)
      pkg=$(awk '{print $2}' <<<"$line")
      for t in "${pending[@]}"; do
        if [[ -z "$FUZZ_MATCH" ]] || grep -Eq -- "$FUZZ_MATCH" <<<"$t"; then
          targets+=("$pkg $t")
        fi
      done
      pending=()
      ;;
    FAIL*)
      build_failures+=("$line")
      pending=()
      ;;
    *)
      ;;
  esac
done <<<"$listing"

if [[ $list_status -ne 0 && ${#build_failures[@]} -eq 0 ]]; then
  echo "fuzz.sh: go test -list failed:" >&2
  echo "$listing" >&2
  exit 1
fi

if [[ $list_only -eq 1 ]]; then
  printf '%s\n' "${targets[@]}"
  exit $(( ${#build_failures[@]} > 0 ))
fi

echo "fuzz.sh: ${#targets[@]} targets, ${FUZZTIME} each"
failed=()
for entry in "${targets[@]}"; do
  pkg=${entry% *}
  target=${entry#* }
  echo "=== $pkg $target"
  if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"; then
    failed+=("$pkg $target")
  fi
done

status=0
if [[ ${#build_failures[@]} -gt 0 ]]; then
  echo "fuzz.sh: packages that did not build (their targets were not run):"
  printf '  %s\n' "${build_failures[@]}"
  status=1
fi
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: FAILED targets (failing inputs are under <package>/testdata/fuzz/<Target>/):"
  printf '  %s\n' "${failed[@]}"
  status=1
else
  echo "fuzz.sh: all ${#targets[@]} targets ran clean for ${FUZZTIME}"
fi
exit $status
