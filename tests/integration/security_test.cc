// Security with real processes on loopback: TLS on the coordinator's port,
// mutual TLS for workers, bearer tokens for clients, and tenants that cannot
// see each other's jobs. Certificates are made at test time with openssl.
#include <gtest/gtest.h>

#include <fstream>

#include "common/blob_upload.h"
#include "common/channel.h"
#include "common/files.h"
#include "shrink/v1/worker_pool.grpc.pb.h"
#include "tests/test_util/coordinator_process.h"
#include "tests/test_util/subprocess.h"
#include "tests/test_util/test_certs.h"

namespace shrink {
namespace {

using testing::BinPath;
using testing::RunCommand;

constexpr char kAliceToken[] = "alice-0123456789abcdef";
constexpr char kBobToken[] = "bob-0123456789abcdef00";
constexpr int kMaxJobsPerTenant = 3;

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(*MakeTempDir("shrink-security-"));
    certs_ = new testing::TestCerts(testing::MakeTestCerts(*root_));
    std::ofstream(*root_ + "/tokens") << "# token tenant\n" << kAliceToken << " alice\n" << kBobToken << " bob\n";
  }
  static void TearDownTestSuite() {
    RemoveAll(*root_);
    delete root_;
    delete certs_;
  }
  void SetUp() override {
    dir_ = *MakeTempDir("case-", *root_);
    coordinator_ = testing::StartCoordinator(
        dir_ + "/state", {"--tls-cert", certs_->server_cert, "--tls-key", certs_->server_key, "--tls-client-ca",
                          certs_->ca, "--tokens", *root_ + "/tokens", "--max-jobs-per-tenant",
                          std::to_string(kMaxJobsPerTenant)});
  }

  std::unique_ptr<v1::Coordinator::Stub> Client(const std::string& token, const std::string& ca = "") {
    ChannelOptions options;
    options.tls_ca = ca.empty() ? certs_->ca : ca;
    options.token = token;
    auto channel = MakeCoordinatorChannel(coordinator_.address, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::Coordinator::NewStub(*channel);
  }
  std::unique_ptr<v1::WorkerPool::Stub> Worker(const std::string& cert, const std::string& key) {
    ChannelOptions options;
    options.tls_ca = certs_->ca;
    options.tls_cert = cert;
    options.tls_key = key;
    auto channel = MakeCoordinatorChannel(coordinator_.address, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::WorkerPool::NewStub(*channel);
  }
  static grpc::Status Register(v1::WorkerPool::Stub* stub) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterWorkerRequest request;
    request.set_slots(1);
    v1::RegisterWorkerResponse response;
    return stub->RegisterWorker(&context, request, &response);
  }
  static grpc::Status List(v1::Coordinator::Stub* stub, v1::ListJobsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->ListJobs(&context, v1::ListJobsRequest(), response);
  }
  static grpc::Status Submit(v1::Coordinator::Stub* stub, const v1::JobSpec& spec, v1::Job* job) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    return stub->SubmitJob(&context, request, job);
  }
  testing::CommandResult Shrink(std::vector<std::string> args, const std::string& token) {
    args.insert(args.begin(), BinPath("shrink"));
    for (const std::string& flag : {std::string("--coordinator"), coordinator_.address, std::string("--tls-ca"),
                                    certs_->ca, std::string("--token"), token}) {
      args.push_back(flag);
    }
    return RunCommand(args);
  }

  static std::string* root_;
  static testing::TestCerts* certs_;
  std::string dir_;
  testing::CoordinatorProcess coordinator_;
};

std::string* SecurityTest::root_ = nullptr;
testing::TestCerts* SecurityTest::certs_ = nullptr;

TEST_F(SecurityTest, JobRunsEndToEndOverTlsWithTokenAndWorkerCertificate) {
  auto worker = testing::StartSimulatedWorker(
      coordinator_.address, 0.01, dir_ + "/cache",
      {"--tls-ca", certs_->ca, "--tls-cert", certs_->worker_cert, "--tls-key", certs_->worker_key});
  auto submitted = Shrink({"submit", testing::WriteJobFile(dir_, 4)}, kAliceToken);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  auto watched = Shrink({"watch", id}, kAliceToken);
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  auto fetched = Shrink({"fetch", id, "--out", dir_ + "/artifact"}, kAliceToken);
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  auto artifact = ReadFile(dir_ + "/artifact/simulated.json");
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_NE(artifact->find(id), std::string::npos);
  auto report = Shrink({"report", id, "--out", dir_ + "/report.html"}, kAliceToken);
  EXPECT_EQ(report.exit_code, 0) << report.err;
  auto health = RunCommand({BinPath("shrink"), "health", "--coordinator", coordinator_.address, "--tls-ca", certs_->ca});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  // The job is alice's.
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(List(Client(kAliceToken).get(), &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 1);
  EXPECT_EQ(jobs.jobs(0).tenant(), "alice");
  EXPECT_EQ(jobs.jobs(0).state(), v1::SUCCEEDED);
}

TEST_F(SecurityTest, ClientsWithoutOrWithAWrongTokenAreUnauthenticated) {
  v1::ListJobsResponse jobs;
  EXPECT_EQ(List(Client("").get(), &jobs).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status wrong = List(Client("mallory-0123456789abcdef").get(), &jobs);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED) << wrong.error_message();
  // The CLI says why and exits 1.
  auto cli = Shrink({"list"}, "mallory-0123456789abcdef");
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("unknown bearer token"), std::string::npos) << cli.err;
  EXPECT_TRUE(List(Client(kAliceToken).get(), &jobs).ok());
}

TEST_F(SecurityTest, PlaintextOrUntrustingClientsCannotConnect) {
  auto plaintext = v1::Coordinator::NewStub(MakeCoordinatorChannel(coordinator_.address));
  v1::ListJobsResponse jobs;
  EXPECT_EQ(List(plaintext.get(), &jobs).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A client that trusts another CA refuses the server's certificate.
  EXPECT_EQ(List(Client(kAliceToken, certs_->rogue_ca).get(), &jobs).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The CLI refuses to send a token in plaintext.
  auto cli = RunCommand({BinPath("shrink"), "list", "--coordinator", coordinator_.address, "--token", kAliceToken});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("plaintext"), std::string::npos) << cli.err;
}

TEST_F(SecurityTest, WorkersNeedACertificateSignedByTheClientCa) {
  ChannelOptions no_cert;
  no_cert.tls_ca = certs_->ca;
  auto anonymous = v1::WorkerPool::NewStub(*MakeCoordinatorChannel(coordinator_.address, no_cert));
  grpc::Status s = Register(anonymous.get());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  // A client token is no worker credential.
  ChannelOptions with_token = no_cert;
  with_token.token = kAliceToken;
  auto client_as_worker = v1::WorkerPool::NewStub(*MakeCoordinatorChannel(coordinator_.address, with_token));
  EXPECT_EQ(Register(client_as_worker.get()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A certificate from another CA fails the handshake.
  EXPECT_EQ(Register(Worker(certs_->rogue_cert, certs_->rogue_key).get()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Register(Worker(certs_->worker_cert, certs_->worker_key).get()).ok());
}

TEST_F(SecurityTest, TenantsCannotSeeWatchCancelOrFetchEachOthersJobs) {
  auto alice = Client(kAliceToken);
  auto bob = Client(kBobToken);
  v1::JobSpec spec = testing::UploadedSpec(alice.get(), dir_, 5);
  spec.set_client_request_id("same-id");
  v1::Job job;
  ASSERT_TRUE(Submit(alice.get(), spec, &job).ok());
  EXPECT_EQ(job.tenant(), "alice");

  auto expect_not_found = [&](const grpc::Status& s, const char* what) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << what << ": " << s.error_message();
    // Reads exactly like a job that does not exist.
    EXPECT_EQ(s.error_message(), "job \"" + job.id() + "\" not found") << what;
  };
  {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_id(job.id());
    v1::Job got;
    expect_not_found(bob->GetJob(&context, request, &got), "GetJob");
  }
  {
    grpc::ClientContext context;
    v1::ListCandidatesRequest request;
    request.set_id(job.id());
    v1::ListCandidatesResponse got;
    expect_not_found(bob->ListCandidates(&context, request, &got), "ListCandidates");
  }
  {
    grpc::ClientContext context;
    v1::CancelJobRequest request;
    request.set_id(job.id());
    v1::Job got;
    expect_not_found(bob->CancelJob(&context, request, &got), "CancelJob");
  }
  {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_id(job.id());
    auto reader = bob->WatchJob(&context, request);
    v1::JobEvent event;
    EXPECT_FALSE(reader->Read(&event));
    expect_not_found(reader->Finish(), "WatchJob");
  }
  {
    grpc::ClientContext context;
    v1::FetchArtifactRequest request;
    request.set_id(job.id());
    auto reader = bob->FetchArtifact(&context, request);
    v1::ArtifactChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    expect_not_found(reader->Finish(), "FetchArtifact");
  }
  {
    // Nor start from her job's agent: init_agent reads her job as missing too.
    v1::JobSpec transfer = spec;
    transfer.set_search("ddpg");
    transfer.clear_client_request_id();
    transfer.set_init_agent(job.id());
    v1::Job got;
    grpc::Status s = Submit(bob.get(), transfer, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  }
  v1::ListJobsResponse bobs;
  ASSERT_TRUE(List(bob.get(), &bobs).ok());
  EXPECT_EQ(bobs.jobs_size(), 0);
  // Bob's request id is his own: the same string makes a new job.
  v1::Job bobs_job;
  ASSERT_TRUE(Submit(bob.get(), spec, &bobs_job).ok());
  EXPECT_NE(bobs_job.id(), job.id());
  EXPECT_EQ(bobs_job.tenant(), "bob");
  v1::Job again;
  ASSERT_TRUE(Submit(alice.get(), spec, &again).ok());
  EXPECT_EQ(again.id(), job.id());
  // Alice still sees and cancels her job (it waits: no worker is connected).
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_id(job.id());
  v1::Job cancelled;
  ASSERT_TRUE(alice->CancelJob(&context, request, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
}

TEST_F(SecurityTest, ATenantsUnfinishedJobsAreLimited) {
  auto alice = Client(kAliceToken);
  v1::JobSpec spec = testing::UploadedSpec(alice.get(), dir_, 5);
  v1::Job job;
  for (int i = 0; i < kMaxJobsPerTenant; ++i) ASSERT_TRUE(Submit(alice.get(), spec, &job).ok());
  grpc::Status over = Submit(alice.get(), spec, &job);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
  EXPECT_NE(over.error_message().find("unfinished jobs"), std::string::npos) << over.error_message();
  // Other tenants are not affected.
  EXPECT_TRUE(Submit(Client(kBobToken).get(), spec, &job).ok());
}

TEST_F(SecurityTest, BadSecurityFlagsAreRefusedClearly) {
  auto tokens_without_tls = RunCommand({BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--state",
                                        dir_ + "/s2", "--tokens", *root_ + "/tokens"});
  EXPECT_EQ(tokens_without_tls.exit_code, 1);
  EXPECT_NE(tokens_without_tls.err.find("--tokens needs --tls-cert"), std::string::npos) << tokens_without_tls.err;
  std::ofstream(dir_ + "/bad-tokens") << "short alice\n";
  auto short_token = RunCommand({BinPath("shrink-coordinator"), "--listen", "127.0.0.1:0", "--state", dir_ + "/s3",
                                 "--tls-cert", certs_->server_cert, "--tls-key", certs_->server_key, "--tokens",
                                 dir_ + "/bad-tokens"});
  EXPECT_EQ(short_token.exit_code, 1);
  EXPECT_NE(short_token.err.find("bad-tokens:1"), std::string::npos) << short_token.err;
  auto worker = RunCommand({BinPath("shrink-worker"), "--coordinator", coordinator_.address, "--tls-cert",
                            certs_->worker_cert, "--tls-key", certs_->worker_key});
  EXPECT_EQ(worker.exit_code, 2);
  EXPECT_NE(worker.err.find("--tls-ca"), std::string::npos) << worker.err;
}

}  // namespace
}  // namespace shrink
