#!/usr/bin/env bash
# Makes one file of the audio test corpus with real encoders: sox writes a pink-noise source of an
# exact number of samples, then sox or ffmpeg encodes it the way a TTS server might answer.
# Used by tests/common/audio_codecs_test.cc and bench/audio_parse_bench.cc.
#   audio_corpus.sh KIND RATE CHANNELS SAMPLES OUT
# The file appears at OUT atomically (written aside, then renamed), so parallel test processes
# can share a cache directory.
set -euo pipefail
if (($# != 5)); then
  echo "usage: $0 KIND RATE CHANNELS SAMPLES OUT" >&2
  exit 2
fi
kind=$1 rate=$2 channels=$3 samples=$4 out=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src.wav
# -R: no random dither, so the same arguments make the same bytes.
sox -R -r "$rate" -n -c "$channels" -b 16 "$src" synth "${samples}s" pinknoise tremolo 4 70 vol 0.5
ff=(ffmpeg -nostdin -hide_banner -v error -y -i "$src")
o=$tmp/out
case $kind in
  wav_s16) "${ff[@]}" -c:a pcm_s16le -f wav "$o" ;;
  wav_s24) "${ff[@]}" -c:a pcm_s24le -f wav "$o" ;;
  wav_f32) "${ff[@]}" -c:a pcm_f32le -f wav "$o" ;;
  wav_ulaw) "${ff[@]}" -c:a pcm_mulaw -f wav "$o" ;;
  wav_alaw) "${ff[@]}" -c:a pcm_alaw -f wav "$o" ;;
  wav_extensible) sox -R "$src" -b 24 -t wav "$o" ;;  # sox writes WAVE_FORMAT_EXTENSIBLE above 16 bits
  wav_rf64) "${ff[@]}" -c:a pcm_s16le -rf64 always -f wav "$o" ;;
  wav_stream) "${ff[@]}" -c:a pcm_s16le -f wav pipe:1 | cat >"$o" ;;  # sizes 0xFFFFFFFF
  pcm_s16le) "${ff[@]}" -f s16le "$o" ;;
  pcm_f32le) "${ff[@]}" -f f32le "$o" ;;
  ulaw) "${ff[@]}" -f mulaw "$o" ;;
  mp3_cbr) "${ff[@]}" -c:a libmp3lame -b:a 64k -f mp3 "$o" ;;  # ID3v2, Info frame with LAME tag
  mp3_vbr) "${ff[@]}" -c:a libmp3lame -q:a 4 -f mp3 "$o" ;;    # Xing frame with LAME tag
  mp3_tags) "${ff[@]}" -c:a libmp3lame -b:a 48k -metadata title=ttsbench -write_id3v1 1 \
    -write_apetag 1 -f mp3 "$o" ;;
  mp3_stream) "${ff[@]}" -c:a libmp3lame -b:a 64k -f mp3 pipe:1 | cat >"$o" ;;  # no Xing frame
  flac) "${ff[@]}" -c:a flac -f flac "$o" ;;
  flac_stream) "${ff[@]}" -c:a flac -f flac pipe:1 | cat >"$o" ;;  # STREAMINFO total 0
  flac_sox) sox -R "$src" -t flac "$o" ;;
  opus) "${ff[@]}" -c:a libopus -b:a 32k -f ogg "$o" ;;
  vorbis) "${ff[@]}" -c:a libvorbis -q:a 3 -f ogg "$o" ;;
  aac) "${ff[@]}" -c:a aac -b:a 64k -f adts "$o" ;;
  source) cp "$src" "$o" ;;
  *)
    echo "unknown kind $kind" >&2
    exit 2
    ;;
esac
mkdir -p "$(dirname "$out")"
mv -f "$o" "$out.$$"
mv -f "$out.$$" "$out"
