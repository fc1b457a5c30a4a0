// WebSocket messages are read piece by piece straight into the decoder
// (ResponseDecoder::OnMessagePart): a message cut anywhere must read exactly as the whole one,
// and a text message past the event cap is refused while it is read, never held.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/client/dialect.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

using Message = std::pair<std::string, bool>;  // payload, binary

struct Reading {
  int64_t audio_bytes = 0;
  double audio_s = 0;
  int done_at = -1;  // index of the message that ended the answer
  int ignored = 0;
  std::string error;
  double seconds = 0;
  int sample_rate = 0;
  bool operator==(const Reading&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Reading& r) {
  return os << "{bytes:" << r.audio_bytes << " s:" << r.audio_s << " done_at:" << r.done_at
            << " ignored:" << r.ignored << " error:'" << r.error << "' seconds:" << r.seconds
            << " rate:" << r.sample_rate << "}";
}

std::unique_ptr<ResponseDecoder> Decoder(const std::string& api, int64_t max_event_bytes = 0) {
  v1::Target t;
  t.set_api(api);
  t.set_stream_format("ws");
  if (api == "elevenlabs") {
    t.set_voice("v");
    t.set_format("pcm_24000");
  }
  if (max_event_bytes > 0) t.set_max_event_bytes(max_event_bytes);
  auto d = MakeDialect(t, *common::ParseUrl("http://127.0.0.1:8000"), {});
  EXPECT_TRUE(d.ok()) << d.status();
  auto dec = (*d)->NewDecoder("");
  EXPECT_TRUE(dec.ok()) << dec.status();
  return std::move(*dec);
}

// `piece` 0: each message whole through OnMessage; else OnMessagePart in pieces of that size.
Reading Read(ResponseDecoder& d, const std::vector<Message>& msgs, size_t piece) {
  Reading r;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& [payload, binary] = msgs[i];
    absl::StatusOr<MessageResult> m;
    if (piece == 0) {
      m = d.OnMessage(payload, binary);
    } else {
      MessageResult sum;
      size_t at = 0;
      do {
        const size_t n = std::min(piece, payload.size() - at);
        m = d.OnMessagePart(absl::string_view(payload).substr(at, n), binary, at == 0,
                            at + n == payload.size());
        if (!m.ok()) break;
        sum.feed.audio_bytes += m->feed.audio_bytes;
        sum.feed.audio_s += m->feed.audio_s;
        sum.done = m->done;
        sum.ignored = m->ignored;
        at += n;
      } while (at < payload.size());
      if (m.ok()) m = sum;
    }
    if (!m.ok()) {
      r.error = std::string(m.status().message());
      return r;
    }
    if (m->ignored) ++r.ignored;
    r.audio_bytes += m->feed.audio_bytes;
    r.audio_s += m->feed.audio_s;
    if (m->done && r.done_at < 0) r.done_at = static_cast<int>(i);
  }
  auto tail = d.Finish();
  if (!tail.ok()) r.error = std::string(tail.status().message());
  r.seconds = d.seconds();
  r.sample_rate = d.sample_rate();
  return r;
}

TEST(WsMessagePartsTest, TorchInferenceBinaryAudioCutAnywhereReadsAsWhole) {
  const std::vector<Message> msgs = {
      {"{\"type\":\"ready\"}", false},
      {"{\"type\":\"meta\",\"sample_rate\":16000,\"encoding\":\"pcm_s16le\"}", false},
      {std::string(32000, '\x01'), true},
      {std::string(96000, '\x02'), true},
      {"{\"type\":\"tts_done\"}", false}};
  const Reading whole = Read(*Decoder("torch-inference"), msgs, 0);
  EXPECT_EQ(whole.error, "");
  EXPECT_DOUBLE_EQ(whole.seconds, 4.0);
  EXPECT_EQ(whole.sample_rate, 16000);
  EXPECT_EQ(whole.done_at, 4);
  for (size_t piece : {1, 7, 4096, 65536}) {
    SCOPED_TRACE(piece);
    EXPECT_EQ(Read(*Decoder("torch-inference"), msgs, piece), whole);
  }
}

TEST(WsMessagePartsTest, ElevenLabsBase64TextCutAnywhereReadsAsWhole) {
  // 1 s of 24 kHz PCM in 4 text messages with base64 audio, the last one over the 16 KiB that
  // is held and read whole: that one is parsed as it arrives.
  std::vector<Message> msgs;
  for (size_t bytes : {4800, 9600, 9600, 24000}) {
    msgs.push_back({absl::StrCat("{\"audio\":\"", absl::Base64Escape(std::string(bytes, '\x03')),
                                 "\",\"isFinal\":false}"),
                    false});
  }
  msgs.push_back({"{\"isFinal\":true}", false});
  const Reading whole = Read(*Decoder("elevenlabs"), msgs, 0);
  EXPECT_EQ(whole.error, "");
  EXPECT_DOUBLE_EQ(whole.seconds, 1.0);
  EXPECT_EQ(whole.done_at, 4);
  for (size_t piece : {1, 3, 1000, 65536}) {
    SCOPED_TRACE(piece);
    EXPECT_EQ(Read(*Decoder("elevenlabs"), msgs, piece), whole);
  }
}

TEST(WsMessagePartsTest, AnEndlessTextMessageIsRefusedAtTheCapWhileItIsRead) {
  const int64_t cap = 256 << 10;
  auto d = Decoder("elevenlabs", cap);
  const std::string piece = absl::StrCat("{\"audio\":\"", std::string(65536, 'A'));
  const std::string more(65536, 'A');
  auto m = d->OnMessagePart(piece, /*binary=*/false, /*first=*/true, /*last=*/false);
  ASSERT_TRUE(m.ok()) << m.status();
  int64_t fed = static_cast<int64_t>(piece.size());
  absl::Status refused;
  while (fed < 64 * cap) {  // an endless message, as --misbehave endless-ws-text sends
    m = d->OnMessagePart(more, false, false, false);
    fed += static_cast<int64_t>(more.size());
    if (!m.ok()) {
      refused = m.status();
      break;
    }
  }
  ASSERT_FALSE(refused.ok()) << "an endless text message was never refused";
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;  // invalid_audio
  EXPECT_LE(fed, cap + static_cast<int64_t>(more.size())) << "refused only after " << fed;
}

}  // namespace
}  // namespace ttsbench::agent
