#include "agent/client/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include "absl/strings/str_cat.h"

namespace ttsbench::agent {

namespace net = boost::asio;

absl::StatusOr<std::unique_ptr<net::ssl::context>> MakeClientTlsContext(const TlsOptions& options) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (options.insecure) {
    ctx->set_verify_mode(net::ssl::verify_none, ec);
    return ctx;
  }
  ctx->set_verify_mode(net::ssl::verify_peer, ec);
  // A host without a system store (a minimal container) can still use ca_file alone.
  ctx->set_default_verify_paths(ec);
  if (!options.ca_file.empty()) {
    ctx->load_verify_file(options.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ca_file ", options.ca_file, ": cannot load certificates (", ec.message(), ")"));
    }
  }
  return ctx;
}

bool PrepareTlsConnection(SSL* ssl, const TlsOptions& options) {
  boost::system::error_code ec;
  (void)net::ip::make_address(options.host, ec);
  const bool is_ip = !ec;
  // SNI carries names only (RFC 6066); certificates for IP literals are matched by address.
  if (!is_ip && SSL_set_tlsext_host_name(ssl, options.host.c_str()) != 1) return false;
  if (!options.insecure) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, options.host.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, options.host.c_str(), 0);
    if (ok != 1) return false;
  }
  static constexpr unsigned char kAlpn[] = "\x08http/1.1";
  return SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn) - 1) == 0;
}

std::string TlsHandshakeDetail(SSL* ssl, const boost::system::error_code& ec) {
  const long verify = SSL_get_verify_result(ssl);  // NOLINT(runtime/int): OpenSSL's type
  if (verify != X509_V_OK) {
    return absl::StrCat("certificate verify failed: ", X509_verify_cert_error_string(verify));
  }
  return absl::StrCat("TLS handshake: ", ec.message());
}

}  // namespace ttsbench::agent
