#!/usr/bin/env bash
# Installs a built ttsbench tree into a temporary prefix, builds this example against it with
# find_package(ttsbench), runs it and checks its level table and session folder. CI runs it
# (.ci/run); by hand: bash examples/cpp/check.sh build
set -euo pipefail
build=$(realpath "${1:?usage: check.sh TTSBENCH_BUILD_DIR}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "examples/cpp: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
# The public headers are plain C++: no Boost, gRPC or protobuf for users to compile.
if grep -rE '#include [<"](boost|grpc|google|absl)' "$work/prefix/include/ttsbench"; then
  fail "installed headers include internal dependencies"
fi
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/fake_engine_bench" "$work/out" >"$work/stdout" || fail "fake_engine_bench exited $?"
cat "$work/stdout"

# One table row per level, each with audio measured and every request successful.
for c in 1 2 4; do
  row=$(grep -E "^$c +[0-9]" "$work/stdout") || fail "no table row for concurrency $c"
  read -r _ asps _ <<<"$row"
  awk -v a="$asps" 'BEGIN { exit !(a > 0) }' || fail "concurrency $c: ASPS $asps is not positive"
  grep -qE "^c=$c: 12/12 ok" "$work/stdout" || fail "concurrency $c: not 12 of 12 requests ok"
done
# The session folder is the CLI's: the installed `ttsbench` reads it back.
"$work/prefix/bin/ttsbench" sessions show "$work/out/fake_engine" >"$work/show" ||
  fail "ttsbench sessions show cannot read the example's session"
grep -q "inprocess://fake-engine" "$work/show" || fail "sessions show does not name the engine"
echo "examples/cpp: ok (installed package found, example built, run and its session read back)"
