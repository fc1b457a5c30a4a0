// The seam between ttsbench and a user's own TTS engine: the engine implements TtsClient and
// hands its audio to an AudioSink as it is made, so that time to first audio, inter-chunk gaps
// and playback underrun are measured exactly as for an HTTP stream. No ttsbench internals here.
#ifndef TTSBENCH_ENGINE_H_
#define TTSBENCH_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace ttsbench {

// One synthesis the benchmark asks for.
struct SynthesisRequest {
  std::string text;
  std::string voice;   // the plan's voice ("" when none was set)
  std::string format;  // the plan's format hint ("" when none was set)
  uint64_t id = 0;     // unique within a level (warm-up requests first)
  bool warmup = false;
};

// What the bytes handed to an AudioSink are. `encoding` is one of the formats the audio meters
// measure: "pcm" (signed 16-bit little-endian), "pcm_f32le", "ulaw", "alaw" (raw samples, which
// need sample_rate and channels), or a container: "wav", "mp3", "aac", "opus", "vorbis", "ogg",
// "flac" ("" or "auto": told by the bytes' signature).
struct AudioFormat {
  std::string encoding = "pcm";
  int sample_rate = 0;
  int channels = 1;
};

// Where one request's audio goes. One sink per request; it may be called from any thread, but
// not from two at once, and never after Synthesize has returned.
class AudioSink {
 public:
  virtual ~AudioSink() = default;
  // Once, before the first Write.
  virtual void Begin(const AudioFormat& format) = 0;
  // The next piece of audio bytes, as soon as the engine has it: its arrival is stamped, the
  // first piece holding audio is the request's first audio (TTFA). Returns false when the
  // request is over (its timeout passed, or the run is stopping); the engine should then return.
  virtual bool Write(const void* data, size_t size) = 0;
  bool Write(std::string_view bytes) { return Write(bytes.data(), bytes.size()); }
  // The whole answer at once, for an engine that does not stream: the request is recorded as
  // not streamed, and its first audio is its end (TTFA = latency). Instead of Begin and Write.
  virtual void WriteWhole(const AudioFormat& format, const void* data, size_t size) = 0;
  // Whether the engine should give up (the request's timeout passed, or the run is stopping),
  // for engines that can poll between steps.
  virtual bool cancelled() const = 0;
};

// What Synthesize returns: success, or the engine's own failure, recorded as an `engine` error
// with `message` as the request's error detail. An exception thrown by Synthesize is recorded
// the same way (its what()); it never stops the run.
class EngineStatus {
 public:
  EngineStatus() = default;
  static EngineStatus Ok() { return EngineStatus(); }
  static EngineStatus Error(std::string message) {
    EngineStatus s;
    s.ok_ = false;
    s.message_ = std::move(message);
    return s;
  }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  std::string message_;
};

// A user's engine. Synthesize is called from one thread per concurrent user at once (N threads
// at concurrency N), so an implementation shared by them must be thread-safe. It must return:
// ttsbench cannot interrupt it, only tell it through the sink that the request is over.
class TtsClient {
 public:
  virtual ~TtsClient() = default;
  virtual EngineStatus Synthesize(const SynthesisRequest& request, AudioSink& sink) = 0;
};

}  // namespace ttsbench

#endif  // TTSBENCH_ENGINE_H_
