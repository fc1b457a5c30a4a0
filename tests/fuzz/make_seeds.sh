#!/usr/bin/env bash
# Writes a small seed corpus per fuzz target into DIR/<parser>/: real files from the test
# corpus script, each prefixed by the byte that picks how the target splits the body.
#   tests/fuzz/make_seeds.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
corpus=$(dirname "$0")/../common/audio_corpus.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seed() {  # PARSER KIND RATE CHANNELS SAMPLES
  local out=$dir/$1/$2-$3-$4-$5
  mkdir -p "$dir/$1"
  bash "$corpus" "$2" "$3" "$4" "$5" "$tmp/body"
  { printf '\x07'; cat "$tmp/body"; } >"$out"
}
seed wav wav_s16 8000 1 400
seed wav wav_extensible 8000 2 300
seed wav wav_ulaw 8000 1 300
seed wav wav_rf64 8000 1 300
seed wav wav_stream 8000 1 300
seed mp3 mp3_cbr 8000 1 2000
seed mp3 mp3_vbr 48000 2 3000
seed mp3 mp3_tags 16000 1 1000
seed mp3 mp3_stream 22050 1 1000
seed adts aac 8000 1 2000
seed adts aac 48000 2 3000
seed ogg opus 8000 1 2000
seed ogg vorbis 8000 1 2000
seed flac flac 8000 1 5000
seed flac flac_stream 8000 2 3000
seed pcm pcm_s16le 8000 1 400
seed pcm mp3_stream 8000 1 1500
seed pcm aac 8000 1 1500
seed pcm wav_s16 8000 1 300
# The audio checks' analyser: the first byte picks the declared format (low 3 bits: wav pcm
# pcm_f32le ulaw alaw mp3 opus auto) and the split (high bits).
seed_analysis() {  # FIRST-BYTE KIND RATE CHANNELS SAMPLES
  local out=$dir/audio_analysis/$2-$3-$4-$5
  mkdir -p "$dir/audio_analysis"
  bash "$corpus" "$2" "$3" "$4" "$5" "$tmp/body"
  { printf "$1"; cat "$tmp/body"; } >"$out"
}
seed_analysis '\x38' wav_s16 8000 1 400
seed_analysis '\x38' wav_extensible 8000 2 300
seed_analysis '\x39' pcm_s16le 8000 1 400
seed_analysis '\x3b' ulaw 8000 1 400
seed_analysis '\x3d' mp3_cbr 8000 1 2000
seed_analysis '\x3e' opus 8000 1 2000
seed_analysis '\x3f' flac 8000 1 2000
# The agent's stream parsers: an SSE body and JSON messages of each dialect (first byte: the
# split seed for fuzz_sse, the dialect's spec for fuzz_ws_message).
mkdir -p "$dir/sse" "$dir/ws_message"
printf '\x07: open\r\n\r\ndata: {"type":"speech.audio.delta","audio":"AAAA"}\r\n\r\nevent: x\ndata: a\ndata: b\n\ndata: [DONE]\n\n' \
  >"$dir/sse/openai"
printf '\x00{"type":"speech.audio.delta","audio":"AAAAAAAA"}' >"$dir/ws_message/openai"
printf '\x01{"audio":"AAAA","isFinal":null,"normalizedAlignment":null}' >"$dir/ws_message/elevenlabs"
printf '\x02{"type":"tts_meta","sample_rate":24000,"encoding":"pcm_f32le"}' >"$dir/ws_message/torch"
printf '\x03{"meta":{"kind":"end","last":true},"data":{"audio":"QUJD"}}' >"$dir/ws_message/template"
# The ASR check's WAV conversion: format index, rate / 100 (LE 16-bit), channels, then audio.
mkdir -p "$dir/asr_wav"
bash "$corpus" wav_stream 8000 1 300 "$tmp/body"
{ printf '\x00\x50\x00\x01'; cat "$tmp/body"; } >"$dir/asr_wav/wav_stream"
bash "$corpus" mp3_cbr 8000 1 2000 "$tmp/body"
{ printf '\x01\x50\x00\x01'; cat "$tmp/body"; } >"$dir/asr_wav/mp3"
bash "$corpus" pcm_s16le 8000 2 400 "$tmp/body"
{ printf '\x06\xdc\x00\x02'; cat "$tmp/body"; } >"$dir/asr_wav/pcm_s16le"

# Prometheus text pages for fuzz_prometheus: the DCGM exporter's and vLLM's shapes.
mkdir -p "$dir/prometheus"
printf '# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1"} 61.2 1395066363000\n' \
  >"$dir/prometheus/dcgm"
printf '# TYPE vllm:e2e histogram\nvllm:e2e_bucket{le="+Inf",model_name="m\\"q\\\\"} 3\nvllm:e2e_sum NaN\nvllm:e2e_count -Inf\n' \
  >"$dir/prometheus/vllm"
printf '\x04{"type":"chunk","data":"AAAA","done":false,"context_id":"c"}' >"$dir/ws_message/cartesia"
printf '\x05{"type":"Flushed","sequence_id":0}' >"$dir/ws_message/deepgram"
printf '\x06{"type":"audio.start","sentence_index":0,"format":"pcm","sample_rate":24000}' >"$dir/ws_message/vllm_omni"
# fuzz_paced_message: the first byte picks the protocol (ElevenLabs, multi, Cartesia, Deepgram,
# vLLM-Omni).
mkdir -p "$dir/paced_message"
printf '\x00{"text":" hello","try_trigger_generation":true,"flush":true}' >"$dir/paced_message/elevenlabs"
printf '\x01{"text":"hi","context_id":"c1","close_context":true}' >"$dir/paced_message/multi"
printf '\x02{"context_id":"c","transcript":"hi","continue":true,"output_format":{"encoding":"pcm_s16le","sample_rate":24000}}' >"$dir/paced_message/cartesia"
printf '\x03{"type":"Speak","text":"hi"}' >"$dir/paced_message/deepgram"
printf '\x04{"type":"session.config","voice":"vivian","response_format":"pcm","stream_audio":true}' >"$dir/paced_message/vllm_omni_config"
printf '\x04{"type":"input.text","text":"hi"}' >"$dir/paced_message/vllm_omni_text"
