// The optional ASR check (plan asr, `--asr-command`; DESIGN.md "ASR check"): after the load,
// a speech recogniser the user names runs on a sample of each level's audio, and each
// level gets WER/CER against the input text, relative to the lowest level of its series.
#ifndef TTSBENCH_COORDINATOR_RUN_ASR_H_
#define TTSBENCH_COORDINATOR_RUN_ASR_H_

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/run/asr_audio.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

struct LevelData;

// One request's audio as an agent kept it (RequestRecord.asr_audio and asr_format).
struct AsrSampleAudio {
  uint64_t request_id = 0;
  uint32_t agent = 0;  // index into Session.agents
  int32_t text_index = 0;
  std::string audio;
  v1::AsrAudioFormat format;
};

// Copies a record's ASR sample into `out` (nothing when it has none; agent left 0).
void TakeAsrSample(const v1::RequestRecord& rec, std::vector<AsrSampleAudio>* out);

// The sample's audio as the WAV the recogniser reads (ConvertToAsrWav, asr_audio.h).
absl::StatusOr<AsrWav> MakeAsrWav(const AsrSampleAudio& sample, int sample_rate);

// What one recogniser run gave.
struct RecogniserRun {
  bool ok = false;    // exited 0 within its timeout
  std::string text;   // stdout, lines joined by spaces, trimmed (at most 64 KiB read)
  std::string error;  // why not ok: "exit 3: <stderr's last line>", "timed out after 60 s"
  double cpu_s = 0;   // user + system CPU of the program and its reaped children
};

// Runs `argv` (argv[0] a path; every "{wav}" inside an argument replaced by `wav_path`) with
// no shell, in its own process group, stdin empty; past `timeout` the group is killed. Never
// throws, never hangs longer than the timeout plus a reap.
RecogniserRun RunRecogniser(const std::vector<std::string>& argv, const std::string& wav_path,
                            std::chrono::milliseconds timeout);

// The whole check after a run: for each level's samples, a WAV under <dir>/asr/, the
// recogniser on it, WER/CER against texts[text_index]; fills session.levels(i).asr (levels[i]
// is session.levels(i)), session.asr and warnings (a recogniser that failed or hung, audio
// that could not be decoded), and writes <dir>/asr.csv (one row per sample). `argv` is the
// recogniser's command line as split and resolved (argv[0] canonical). Progress lines on `err`.
void RunAsrCheck(const v1::AsrCheck& plan, const std::vector<std::string>& argv,
                 const std::vector<std::string>& texts, const std::string& dir,
                 const std::vector<LevelData>& levels, v1::Session& session, std::ostream& err);

// Fills wer_delta, cer_delta and baseline_load of every level with recognised samples, against
// the lowest load (concurrency, or rate) of the same series with recognised samples: the mean,
// over the level's samples whose text the lowest level also recognised, of WER minus that
// text's WER there; when no text is shared, the difference of the two means, and a warning.
void FillAsrBaselines(v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_RUN_ASR_H_
