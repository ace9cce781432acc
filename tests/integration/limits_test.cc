// Limits and validation against a real coordinator process: oversized
// messages and blobs are refused with RESOURCE_EXHAUSTED / INVALID_ARGUMENT
// (and the coordinator keeps serving), and job specs are checked field by
// field with errors naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "common/blob_upload.h"
#include "common/channel.h"
#include "common/files.h"
#include "tests/test_util/coordinator_process.h"

namespace shrink {
namespace {

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = *MakeTempDir("shrink-limits-");
    coordinator_ = testing::StartCoordinator(dir_ + "/state", {"--max-blob-mb", "2", "--max-message-mb", "2"});
    stub_ = v1::Coordinator::NewStub(MakeCoordinatorChannel(coordinator_.address));
  }
  void TearDown() override { RemoveAll(dir_); }

  grpc::Status Submit(const v1::JobSpec& spec, v1::Job* job = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::Job ignored;
    return stub_->SubmitJob(&context, request, job ? job : &ignored);
  }

  std::string dir_;
  testing::CoordinatorProcess coordinator_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(LimitsTest, OversizedMessageIsResourceExhausted) {
  v1::JobSpec spec = testing::UploadedSpec(stub_.get(), dir_, 3);
  spec.set_name(std::string(3 << 20, 'n'));  // 3 MiB > --max-message-mb 2
  grpc::Status s = Submit(spec);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Still serving.
  spec.set_name("ok");
  EXPECT_TRUE(Submit(spec).ok());
}

TEST_F(LimitsTest, OversizedBlobsAreRefusedAndLeaveNothingBehind) {
  std::string big = dir_ + "/big.bin";
  ASSERT_TRUE(WriteFileAtomic(big, std::string(3 << 20, 'b')).ok());  // 3 MiB > --max-blob-mb 2
  auto ref = DescribeFile(big, "model.safetensors");
  ASSERT_TRUE(ref.ok());
  absl::Status declared = UploadFile(stub_.get(), big, *ref);
  EXPECT_EQ(declared.code(), absl::StatusCode::kInvalidArgument) << declared;
  // Lying about the size does not help: the bytes beyond it are refused.
  v1::FileRef lying = *ref;
  lying.set_size(1 << 20);
  absl::Status streamed = UploadFile(stub_.get(), big, lying);
  EXPECT_EQ(streamed.code(), absl::StatusCode::kResourceExhausted) << streamed;
  v1::StatBlobsRequest request;
  request.add_sha256(ref->sha256());
  v1::StatBlobsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->StatBlobs(&context, request, &response).ok());
  EXPECT_EQ(response.missing_size(), 1);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/state/blobs/tmp", error)) {
    ADD_FAILURE() << "left behind: " << entry.path();
  }
}

TEST_F(LimitsTest, SpecIsValidatedFieldByField) {
  const v1::JobSpec good = testing::UploadedSpec(stub_.get(), dir_, 3);
  struct Case {
    const char* field;
    std::function<void(v1::JobSpec&)> spoil;
  };
  const Case cases[] = {
      {"spec.budget", [](v1::JobSpec& s) { s.set_budget(0); }},
      {"spec.budget", [](v1::JobSpec& s) { s.set_budget(1000001); }},
      {"spec.goal.target_size", [](v1::JobSpec& s) { s.mutable_goal()->set_target_size(1.5); }},
      {"spec.goal.target_size", [](v1::JobSpec& s) { s.mutable_goal()->set_target_size(std::nan("")); }},
      {"spec.goal.min_retention", [](v1::JobSpec& s) { s.mutable_goal()->set_min_retention(-0.1); }},
      {"spec.reward.alpha", [](v1::JobSpec& s) { s.mutable_reward()->set_alpha(std::nan("")); }},
      {"spec.reward.delta", [](v1::JobSpec& s) { s.mutable_reward()->set_delta(-1); }},
      {"spec.max_in_flight", [](v1::JobSpec& s) { s.set_max_in_flight(100000); }},
      {"spec.search", [](v1::JobSpec& s) { s.set_search("telepathy"); }},
      {"spec.task.name", [](v1::JobSpec& s) { s.mutable_task()->set_name("imagenet"); }},
      {"spec.name", [](v1::JobSpec& s) { s.set_name(std::string(300, 'n')); }},
      {"spec.client_request_id", [](v1::JobSpec& s) { s.set_client_request_id(std::string(200, 'r')); }},
      {"spec.model_files[0].name", [](v1::JobSpec& s) { s.mutable_model_files(0)->set_name("../config.json"); }},
      {"spec.model_files[1].name", [](v1::JobSpec& s) { s.mutable_model_files(1)->set_name("config.json"); }},
      {"spec.model_files[config.json].size", [](v1::JobSpec& s) { s.mutable_model_files(0)->set_size(7); }},
      {"spec.model_files[model.safetensors].sha256",
       [](v1::JobSpec& s) { s.mutable_model_files(1)->set_sha256("not-a-digest"); }},
      {"spec.model_files must contain", [](v1::JobSpec& s) { s.mutable_model_files()->RemoveLast(); }},
      {"spec.model_files[0].name", [](v1::JobSpec& s) { s.mutable_model_files(0)->set_name(".config.json"); }},
      {"spec.model_files[0].origin", [](v1::JobSpec& s) { s.mutable_model_files(0)->set_origin(std::string(4097, 'o')); }},
      {"spec.task.data_files[images].sha256", [](v1::JobSpec& s) {
         v1::FileRef* file = s.mutable_task()->add_data_files();
         file->set_name("images");
         file->set_sha256("not-a-digest");
       }},
      {"spec.task.data_files[0].name", [](v1::JobSpec& s) {
         *s.mutable_task()->add_data_files() = s.model_files(0);
         s.mutable_task()->mutable_data_files(0)->set_name("");
       }},
  };
  for (const Case& c : cases) {
    v1::JobSpec spec = good;
    c.spoil(spec);
    grpc::Status s = Submit(spec);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.field), std::string::npos) << c.field << ": " << s.error_message();
  }
  v1::Job job;
  ASSERT_TRUE(Submit(good, &job).ok());
  EXPECT_EQ(job.tenant(), "default");  // no tokens configured
}

}  // namespace
}  // namespace shrink
