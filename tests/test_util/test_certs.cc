#include "tests/test_util/test_certs.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util/subprocess.h"

namespace shrink::testing {
namespace {

void Openssl(const std::string& dir, const std::string& args) {
  auto r = RunCommand({"/bin/sh", "-c", "cd '" + dir + "' && openssl " + args});
  ASSERT_EQ(r.exit_code, 0) << "openssl " << args << "\n" << r.err;
}

const char kKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

void MakeCa(const std::string& dir, const std::string& name) {
  Openssl(dir, std::string("req -x509 ") + kKey + " -keyout " + name + ".key -out " + name +
                   ".pem -days 1 -subj /CN=" + name);
}

void MakeSigned(const std::string& dir, const std::string& name, const std::string& ca,
                const std::string& extensions) {
  Openssl(dir, std::string("req ") + kKey + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name);
  std::ofstream(dir + "/" + name + ".ext") << extensions << "\n";
  Openssl(dir, "x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca + ".key -CAcreateserial -out " +
                   name + ".pem -days 1 -extfile " + name + ".ext");
}

}  // namespace

TestCerts MakeTestCerts(const std::string& dir) {
  MakeCa(dir, "ca");
  MakeCa(dir, "rogue-ca");
  MakeSigned(dir, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
  MakeSigned(dir, "worker", "ca", "extendedKeyUsage=clientAuth");
  MakeSigned(dir, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth");
  TestCerts c;
  c.ca = dir + "/ca.pem";
  c.server_cert = dir + "/server.pem";
  c.server_key = dir + "/server.key";
  c.worker_cert = dir + "/worker.pem";
  c.worker_key = dir + "/worker.key";
  c.rogue_ca = dir + "/rogue-ca.pem";
  c.rogue_cert = dir + "/rogue.pem";
  c.rogue_key = dir + "/rogue.key";
  return c;
}

}  // namespace shrink::testing
