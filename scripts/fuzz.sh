#!/usr/bin/env bash
# Runs every Go fuzz target in the module, one at a time, each for FUZZTIME.
#
#   scripts/fuzz.sh                 every target in ./..., 60s each
#   FUZZTIME=10m scripts/fuzz.sh    longer
#   FUZZ_MATCH=Host scripts/fuzz.sh only targets whose name matches (grep -E)
#   FUZZMINIMIZETIME=1m scripts/fuzz.sh   minimize new inputs longer (default 2s)
#   scripts/fuzz.sh ./internal/...  only these packages
#   scripts/fuzz.sh -l              list the targets and exit
#
# Targets are found with `go test -list '^Fuzz'`, so a new Fuzz function is
# picked up without editing this file. New failing inputs are written by Go
# to <package>/testdata/fuzz/<Target>/; commit them with the fix so they stay
# regression tests. Exits non-zero if any target fails or a package does not
# build. A run that ends only in "context deadline exceeded" (a race in Go's
# fuzz coordinator at the end of -fuzztime, golang/go#75804, fixed in Go
# 1.27) is run again; it counts as a failure unless it flakes twice with no
# finding and the corpus replays clean.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-60s}"
# Go minimizes every new interesting input for up to a minute by default,
# reporting 0 execs/s meanwhile: a 60 s run of a target whose inputs grow
# long (URLs up to 2 KiB) then spent 48 s of its minute minimizing one.
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-2s}"
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

# fuzz_once runs one target; its output goes to the terminal and to $log.
fuzz_once() {
  go test -run='^$' -fuzz="^$2\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$FUZZMINIMIZETIME" "$1" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# deadline_flake reports whether a failed run is Go's coordinator race at
# the end of -fuzztime (golang/go#75804, fixed in Go 1.27): a bare "context
# deadline exceeded" with no failing input written and no panic.
deadline_flake() {
  grep -q 'context deadline exceeded' "$log" &&
    ! grep -Eq 'Failing input written|panic:|fuzz_test.go:[0-9]+:|_test.go:[0-9]+:' "$log"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "fuzz.sh: ${#targets[@]} targets, ${FUZZTIME} each"
failed=()
flaked=()
for entry in "${targets[@]}"; do
  pkg=${entry% *}
  target=${entry#* }
  echo "=== $pkg $target"
  fuzz_once "$pkg" "$target" && continue
  if deadline_flake; then
    echo "fuzz.sh: $target hit the -fuzztime deadline race without a finding; running it again"
    fuzz_once "$pkg" "$target" && continue
    # Twice in a row: accept it only if the corpus replays clean.
    if deadline_flake && go test -count=1 -run="^${target}\$" "$pkg" >/dev/null; then
      flaked+=("$pkg $target")
      continue
    fi
  fi
  failed+=("$pkg $target")
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
if [[ ${#flaked[@]} -gt 0 ]]; then
  echo "fuzz.sh: these ended twice on Go's -fuzztime deadline race (no finding; corpus replays clean):"
  printf '  %s\n' "${flaked[@]}"
fi
exit $status
