// Client TLS for the load engine: contexts that verify certificates by default, and the
// per-connection settings (SNI, host name check, ALPN) every TLS connection gets.
#ifndef TTSBENCH_AGENT_TLS_H_
#define TTSBENCH_AGENT_TLS_H_

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/client/dialect.h"

namespace ttsbench::agent {

// TLS 1.2 or later; the system trust store plus options.ca_file; verification off only with
// options.insecure. InvalidArgument naming the file when ca_file cannot be loaded.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const TlsOptions& options);

// Sets SNI (for names, not IP literals), the certificate's host name check (unless insecure)
// and ALPN http/1.1 on a connection's SSL handle. False when OpenSSL refuses.
bool PrepareTlsConnection(SSL* ssl, const TlsOptions& options);

// Why a handshake failed, in words: "certificate verify failed: self-signed certificate" when
// the server's certificate was refused, else OpenSSL's reason (e.g. "wrong version number": the
// port speaks plain HTTP).
std::string TlsHandshakeDetail(SSL* ssl, const boost::system::error_code& ec);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_TLS_H_
