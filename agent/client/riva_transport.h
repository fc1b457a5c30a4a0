// api: riva — NVIDIA Riva's RivaSpeechSynthesis over gRPC (grpc:// or grpcs://): the request
// mapping (a Dialect) and the load engine's connection (one gRPC channel, i.e. one HTTP/2
// connection, per virtual user), with Synthesize (unary) or SynthesizeOnline (server streaming).
// gRPC's callback API runs on gRPC's threads; every event is stamped there on the agent's steady
// clock and handed to the worker's io_context with `post`, where the record is built.
#ifndef TTSBENCH_AGENT_RIVA_TRANSPORT_H_
#define TTSBENCH_AGENT_RIVA_TRANSPORT_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/client/dialect.h"
#include "agent/client/transport.h"
#include "riva/proto/riva_tts.pb.h"

namespace ttsbench::agent {

// Riva's defaults where the plan says nothing: the rate its clients ask for (talk.py's
// --sample-rate-hz) and its language; the format is raw PCM (LINEAR_PCM).
inline constexpr int kRivaDefaultSampleRate = 44100;
inline constexpr absl::string_view kRivaDefaultLanguage = "en-US";
// Largest gRPC message the agent accepts (a unary answer is one message): the JSON answer cap.
inline constexpr int kRivaMaxMessageBytes = 16 << 20;

// target.format -> Riva's encoding: pcm -> LINEAR_PCM, opus | ogg -> OGGOPUS; InvalidArgument
// naming the accepted formats otherwise.
absl::StatusOr<nvidia::riva::AudioEncoding> RivaEncoding(absl::string_view format);

// The request a text becomes (voice, language, rate and encoding from the target).
absl::StatusOr<nvidia::riva::tts::SynthesizeSpeechRequest> RivaRequest(const v1::Target& target,
                                                                       absl::string_view text);

// gRPC metadata from headers: names lowercased (gRPC's rule); InvalidArgument naming the header
// (never its value) when a name is not a token or a value is not printable ASCII.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> GrpcMetadata(
    const std::vector<v1::Header>& headers);

// "UNAUTHENTICATED (16): invalid API key": a status for error_detail (message cut short).
std::string GrpcStatusDetail(const grpc::Status& status);

// Channel credentials for `tls`: none when disabled; the system roots plus tls.ca_file; no
// verification at all with tls.insecure (explicit opt-in).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcCredentials(const TlsOptions& tls);

// Channel arguments of one virtual user's channel: its own subchannel (so its own TCP
// connection, not one shared by every channel of the process), the message cap, no retries.
grpc::ChannelArguments RivaChannelArguments();

// api: riva (MakeDialect calls this for it).
absl::StatusOr<std::unique_ptr<Dialect>> MakeRivaDialect(const v1::Target& target,
                                                         const common::Url& url,
                                                         std::vector<v1::Header> secret_headers);

// The load engine's connection for TransportSpec::Kind::kGrpc.
std::unique_ptr<ClientConnection> MakeRivaConnection(boost::asio::io_context& ioc,
                                                     const TransportSpec& spec);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_RIVA_TRANSPORT_H_
