#!/usr/bin/env bash
# Installs what ttsbench needs to build, test and run on Debian 12 (bookworm). Idempotent: run it
# as root as often as you like. Used by README.md, .ci/run and the container image build.
set -euo pipefail
packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang-format python3
  clang libclang-rt-14-dev
  # wire API and libraries (DESIGN.md, "Libraries")
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev libabsl-dev libssl-dev
  libyaml-cpp-dev libcli11-dev libsndfile1-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers and real audio for tests and benchmarks
  ffmpeg sox gnuplot-nox strace openssl iproute2 util-linux python3-yaml
  # a real local engine for the command target (api: command)
  espeak-ng
  # a real speech recogniser for the optional ASR check's tests (--asr-command)
  pocketsphinx pocketsphinx-en-us
  # reference tools the benchmarks under bench/ run side by side with ttsbench
  wrk nginx-light python3-locust
  # deployment checks (deploy/check.sh): manifests render, the unit verifies
  systemd
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: ${#packages[@]} packages present"
