// Certificates for TLS tests, made at test time with Debian's `openssl` CLI:
// a CA, a server certificate for 127.0.0.1/localhost, a worker (client)
// certificate, and a second CA with a worker certificate it signed.
#pragma once

#include <string>

namespace shrink::testing {

struct TestCerts {
  std::string ca;            // PEM of the trusted CA
  std::string server_cert;   // signed by ca; SAN IP:127.0.0.1, DNS:localhost
  std::string server_key;
  std::string worker_cert;   // signed by ca
  std::string worker_key;
  std::string rogue_ca;      // another CA
  std::string rogue_cert;    // a worker certificate signed by rogue_ca
  std::string rogue_key;
};

// Writes everything into `dir` (ECDSA P-256, valid one day). Fails the test on error.
TestCerts MakeTestCerts(const std::string& dir);

}  // namespace shrink::testing
