#include "common/records.h"

namespace ttsbench::common {

absl::string_view ErrorKindName(v1::ErrorKind kind) {
  switch (kind) {
    case v1::ERROR_NONE:
      return "";
    case v1::ERROR_CONNECT:
      return "connect";
    case v1::ERROR_TLS:
      return "tls";
    case v1::ERROR_WRITE:
      return "write";
    case v1::ERROR_READ:
      return "read";
    case v1::ERROR_TIMEOUT:
      return "timeout";
    case v1::ERROR_HTTP_4XX:
      return "http_4xx";
    case v1::ERROR_HTTP_5XX:
      return "http_5xx";
    case v1::ERROR_HTTP_429:
      return "http_429";
    case v1::ERROR_INVALID_AUDIO:
      return "invalid_audio";
    case v1::ERROR_EMPTY_AUDIO:
      return "empty_audio";
    case v1::ERROR_PROTOCOL:
      return "protocol";
    case v1::ERROR_CANCELLED:
      return "cancelled";
    case v1::ERROR_EXIT:
      return "exit";
    case v1::ERROR_SPAWN:
      return "spawn";
    case v1::ERROR_ENGINE:
      return "engine";
    case v1::ERROR_GRPC_STATUS:
      return "grpc_status";
    case v1::ERROR_FLUSH_UNANSWERED:  // paced text (issue 13)
      return "flush_unanswered";
    case v1::ERROR_AUDIO_AFTER_CANCEL:
      return "audio_after_cancel";
    case v1::ERROR_CLOSED_MID_TURN:
      return "closed_mid_turn";
    case v1::ERROR_UNKNOWN_MESSAGE:
      return "unknown_message";
    default:
      return "unknown";
  }
}

}  // namespace ttsbench::common
