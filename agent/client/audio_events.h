// One JSON message of a streamed TTS answer (an SSE event's data, a WebSocket text message):
// base64 audio, end and error markers, stream metadata. Pure, so it can be fuzzed on its own.
#ifndef TTSBENCH_AGENT_AUDIO_EVENTS_H_
#define TTSBENCH_AGENT_AUDIO_EVENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::agent {

// Where a dialect puts things in its messages. Paths are dotted ("data.audio").
struct AudioEventSpec {
  // A TTS event carries a fraction of a second of audio (OpenAI: ~3 KB of base64); a message
  // beyond this is refused (invalid audio) rather than buffered and parsed.
  static constexpr size_t kDefaultMaxEventBytes = size_t{1} << 20;

  // Base64 audio: the first of these present and not null; "" means none.
  std::vector<std::string> audio_fields = {"audio"};
  std::string type_field = "type";        // the message kind, read into AudioEvent::type
  std::vector<std::string> done_types;    // kinds that end the answer ("speech.audio.done")
  std::vector<std::string> error_types;   // kinds that report a failure ("error")
  std::vector<std::string> ignore_types;  // kinds outside any answer (a greeting: "ready")
  // Done kinds that acknowledge an interrupt (Deepgram "Cleared"): nothing of the interrupted
  // answer follows them, so the socket can carry the next request (MessageResult::acknowledged).
  std::vector<std::string> ack_types;
  std::string final_field;  // true ends the answer ("isFinal")
  std::string error_field;  // a non-empty value reports a failure ("error")
  // When set, every message must carry one of these kinds (or one of the done, error and ignore
  // kinds); another is an unknown message (the decoder refuses it: Unimplemented).
  std::vector<std::string> known_types;
  size_t max_event_bytes = kDefaultMaxEventBytes;  // one message, as received
};

struct AudioEvent {
  std::string type;
  std::string audio;  // decoded bytes
  bool done = false;
  bool ignored = false;  // its kind is in ignore_types
  int sample_rate = 0;   // a metadata message's "sample_rate", else 0
  std::string encoding;  // a metadata message's "encoding" (pcm_s16le, pcm_f32le, ...)
};

// Reads the messages of one answer with a streaming (SAX) JSON parser that keeps only the
// fields the spec names: no document tree, and the parser's stack, the kept strings and the
// decoded audio keep their capacity from message to message, so steady state allocates nothing.
class AudioEventParser {
 public:
  explicit AudioEventParser(AudioEventSpec spec);
  ~AudioEventParser();
  AudioEventParser(const AudioEventParser&) = delete;
  AudioEventParser& operator=(const AudioEventParser&) = delete;

  // InvalidArgument: larger than spec.max_event_bytes, not a JSON object, or the audio is not
  // base64 (a failed request's audio is invalid). FailedPrecondition: the message reports a
  // server-side error. The SSE sentinel "[DONE]" is an event with done set. On success the
  // message is event(), valid until the next Parse.
  absl::Status Parse(absl::string_view json);
  const AudioEvent& event() const { return event_; }

  // The same message written in pieces as it arrives (an SSE event's data, a JSON answer),
  // its audio handed to `audio` as decoded bytes rather than kept in event().audio. A message
  // up to kHeldBytes is held and read at End exactly as Parse reads it; past that it is fed to
  // the streaming parser as it comes, its base64 decoded part by part straight into `audio`,
  // so memory does not grow with the message. A streamed message takes the first audio string
  // in it (not the first of spec.audio_fields), and its metadata applies from the next one.
  // spec.max_event_bytes counts the message's bytes: more is refused (invalid audio) at once.
  // An error from `audio` is returned as is. After an error, only Begin is allowed.
  static constexpr size_t kHeldBytes = size_t{16} << 10;
  using AudioSink = absl::FunctionRef<absl::Status(absl::string_view)>;
  void Begin();
  absl::Status Write(absl::string_view piece, AudioSink audio);
  // The message is complete: event() holds what it says (type, done, ...), not its audio.
  absl::Status End(AudioSink audio);

 private:
  struct Impl;  // keeps Boost.JSON's parser template out of this header
  absl::Status StartStreaming(absl::string_view first, AudioSink audio);
  absl::Status Push(absl::string_view piece, AudioSink audio);
  // What the parsed fields say; `report` is the message (or its start) for a server's error.
  absl::Status Evaluate(absl::string_view report, bool audio_streamed, bool* decoded);

  std::unique_ptr<Impl> impl_;
  AudioEvent event_;
  std::string held_;  // the message so far while it is within kHeldBytes
  std::string head_;  // a streamed message's first bytes, for a server's error report
  size_t size_ = 0;   // the message's bytes so far
  bool streaming_ = false;
  bool failed_ = false;
};

// Base64 decoded as it arrives, in pieces split anywhere, with Base64Decode's grammar: the
// 0-3 characters of an unfinished quad are carried to the next piece.
class Base64Stream {
 public:
  void Reset();
  // Decodes `src` after what came before into `*out` (valid until the next call; its buffer
  // is reused). False: not base64 (the stream is then unusable until Reset).
  bool Write(absl::string_view src, absl::string_view* out);
  // The end: the last 0-2 bytes of an unfinished quad, and the padding checked.
  bool Finish(absl::string_view* out);

 private:
  std::string buffer_;
  uint32_t acc_ = 0;
  int chars_ = 0;        // in acc_
  bool padded_ = false;  // padding met: only padding and whitespace may follow
  int pad_ = 0;
  int expected_pad_ = 0;
};

// Decodes standard base64 into `dest` (overwritten; its capacity is reused), exactly as
// absl::Base64Unescape does: whitespace anywhere is skipped, padding ('=' or '.') is optional
// but, when present, complete. False (dest cleared) on anything else. Vectorised (AVX2) where
// the CPU has it: base64 was a third of the agent's CPU on streamed answers with absl's decoder.
bool Base64Decode(absl::string_view src, std::string* dest);
// The same without the vector path, so tests can compare both on any CPU.
bool Base64DecodeScalarForTest(absl::string_view src, std::string* dest);

// One message parsed on its own (tests, fuzzers); the decoders keep an AudioEventParser.
absl::StatusOr<AudioEvent> ParseAudioEvent(absl::string_view json, const AudioEventSpec& spec);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_AUDIO_EVENTS_H_
