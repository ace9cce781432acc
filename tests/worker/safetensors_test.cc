// Safetensors reader/writer: round trips and rejection of corrupt files.
#include "worker/checkpoint/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "common/files.h"
#include "worker/checkpoint/safetensors_torch.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A file image with the given header text and data region.
std::string FileImage(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string Message(const absl::StatusOr<std::unique_ptr<SafetensorsFile>>& file) {
  EXPECT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  return std::string(file.status().message());
}

TEST(SafetensorsTest, RoundTripsEveryDtypeInMemoryAndThroughMmap) {
  const SafetensorsDtype dtypes[] = {SafetensorsDtype::kBool, SafetensorsDtype::kU8,  SafetensorsDtype::kI8,
                                     SafetensorsDtype::kI16,  SafetensorsDtype::kU16, SafetensorsDtype::kF16,
                                     SafetensorsDtype::kBF16, SafetensorsDtype::kI32, SafetensorsDtype::kU32,
                                     SafetensorsDtype::kF32,  SafetensorsDtype::kI64, SafetensorsDtype::kU64,
                                     SafetensorsDtype::kF64};
  std::map<std::string, SafetensorsTensor> tensors;
  int seed = 1;
  for (SafetensorsDtype dtype : dtypes) {
    SafetensorsTensor t;
    t.dtype = dtype;
    t.shape = {2, 3};
    for (int64_t i = 0; i < 6 * DtypeSize(dtype); ++i) t.bytes.push_back(static_cast<char>((seed * 31 + i * 7) & 0xff));
    if (dtype == SafetensorsDtype::kBool) t.bytes = std::string("\x01\x00\x01\x01\x00\x00", 6);
    tensors["t." + DtypeName(dtype)] = t;
    ++seed;
  }
  tensors["empty"] = SafetensorsTensor{SafetensorsDtype::kF32, {0, 4}, ""};
  tensors["scalar"] = SafetensorsTensor{SafetensorsDtype::kI64, {}, std::string(8, '\x05')};
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "round trip"}};

  auto bytes = SerializeSafetensors(tensors, metadata);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto in_memory = SafetensorsFile::FromBytes(*bytes);
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();

  auto dir = MakeTempDir("safetensors-test-");
  ASSERT_TRUE(dir.ok());
  const std::string path = *dir + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  auto mapped = SafetensorsFile::Open(path);
  ASSERT_TRUE(mapped.ok()) << mapped.status();

  for (const auto* file : {in_memory->get(), mapped->get()}) {
    EXPECT_EQ(file->metadata(), metadata);
    ASSERT_EQ(file->tensors().size(), tensors.size());
    for (const auto& [name, want] : tensors) {
      const SafetensorsTensorView* got = file->Find(name);
      ASSERT_NE(got, nullptr) << name;
      EXPECT_EQ(got->dtype, want.dtype) << name;
      EXPECT_EQ(got->shape, want.shape) << name;
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(got->data), got->size), want.bytes) << name;
    }
  }
  // The data region starts 8-byte aligned, like the reference writer's files.
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes->data(), 8);
  EXPECT_EQ(header_length % 8, 0u);
  RemoveAll(*dir);
}

TEST(SafetensorsTest, TorchConversionRoundTripsValues) {
  std::vector<torch::Tensor> tensors = {
      torch::randn({3, 4}),
      torch::randn({5}).to(torch::kFloat16),
      torch::randn({2, 2}).to(torch::kBFloat16),
      torch::randint(-128, 127, {4, 3}, torch::kInt8),
      torch::randint(0, 255, {7}, torch::kUInt8),
      torch::randint(-1000, 1000, {2, 3, 4}, torch::kInt32),
      torch::randint(-1000, 1000, {6}, torch::kInt64),
      torch::randn({4}) > 0,
      torch::randn({3, 4}).t(),  // non-contiguous
  };
  for (const auto& tensor : tensors) {
    auto stored = FromTorch(tensor);
    ASSERT_TRUE(stored.ok()) << stored.status();
    auto bytes = SerializeSafetensors({{"x", *stored}});
    ASSERT_TRUE(bytes.ok());
    auto file = SafetensorsFile::FromBytes(*bytes);
    ASSERT_TRUE(file.ok()) << file.status();
    auto back = ToTorch(*(*file)->Find("x"));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->scalar_type(), tensor.scalar_type());
    EXPECT_TRUE(torch::equal(*back, tensor)) << tensor.scalar_type();
  }
  EXPECT_FALSE(ToTorch(SafetensorsTensorView{SafetensorsDtype::kU32, {1}, nullptr, 4, 0}).ok());
}

TEST(SafetensorsTest, RejectsTruncatedFile) {
  EXPECT_THAT(Message(SafetensorsFile::FromBytes("abc")), HasSubstr("truncated"));
  EXPECT_THAT(Message(SafetensorsFile::FromBytes("")), HasSubstr("truncated"));
}

TEST(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  std::string image = FileImage("{}", "");
  image[0] = static_cast<char>(200);  // claims a 200-byte header in a 10-byte file
  EXPECT_THAT(Message(SafetensorsFile::FromBytes(image)), AllOf(HasSubstr("header length 200"), HasSubstr("byte offset 0")));
  std::string huge(8, '\xff');
  EXPECT_THAT(Message(SafetensorsFile::FromBytes(huge + "{}")), HasSubstr("header length"));
}

TEST(SafetensorsTest, RejectsBadJson) {
  EXPECT_THAT(Message(SafetensorsFile::FromBytes(FileImage("{\"a\": [1, 2", ""))), HasSubstr("not valid JSON"));
  EXPECT_THAT(Message(SafetensorsFile::FromBytes(FileImage("[1, 2]", ""))), HasSubstr("not a JSON object"));
}

TEST(SafetensorsTest, RejectsOffsetsOutsideTheDataRegion) {
  const std::string header = R"({"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  const std::string message = Message(SafetensorsFile::FromBytes(FileImage(header, std::string(12, '\0'))));
  EXPECT_THAT(message, AllOf(HasSubstr("\"bias\""), HasSubstr("byte offset")));
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string message = Message(SafetensorsFile::FromBytes(FileImage(header, std::string(12, '\0'))));
  EXPECT_THAT(message, AllOf(HasSubstr("\"b\""), HasSubstr("overlaps"), HasSubstr("\"a\""), HasSubstr("byte offset")));
}

TEST(SafetensorsTest, RejectsWrongByteSize) {
  const std::string header = R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})";
  const std::string message = Message(SafetensorsFile::FromBytes(FileImage(header, std::string(8, '\0'))));
  EXPECT_THAT(message, AllOf(HasSubstr("\"w\""), HasSubstr("needs 6 bytes")));
}

TEST(SafetensorsTest, RejectsMalformedEntries) {
  auto reject = [](const std::string& header, const std::string& expected) {
    EXPECT_THAT(Message(SafetensorsFile::FromBytes(FileImage(header, std::string(8, '\0')))), HasSubstr(expected))
        << header;
  };
  reject(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", "\"w\"");
  reject(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "\"w\"");
  reject(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "\"w\"");
  reject(R"({"w":{"dtype":"F32","shape":[2]}})", "\"w\"");
  reject(R"({"w":[1,2]})", "\"w\"");
  reject(R"({"__metadata__":{"n":1}})", "__metadata__");
}

TEST(SafetensorsTest, TruncatedDataOnDiskNamesTheTensor) {
  auto dir = MakeTempDir("safetensors-test-");
  ASSERT_TRUE(dir.ok());
  auto bytes = SerializeSafetensors({{"layer.weight", SafetensorsTensor{SafetensorsDtype::kF32, {16}, std::string(64, '\1')}}});
  ASSERT_TRUE(bytes.ok());
  const std::string path = *dir + "/cut.safetensors";
  ASSERT_TRUE(WriteFileAtomic(path, bytes->substr(0, bytes->size() - 10)).ok());
  auto file = SafetensorsFile::Open(path);
  EXPECT_THAT(Message(file), AllOf(HasSubstr(path), HasSubstr("layer.weight"), HasSubstr("byte offset")));
  EXPECT_EQ(SafetensorsFile::Open(*dir + "/missing.safetensors").status().code(), absl::StatusCode::kNotFound);
  RemoveAll(*dir);
}

TEST(SafetensorsTest, WriterRejectsInconsistentTensor) {
  auto bytes = SerializeSafetensors({{"w", SafetensorsTensor{SafetensorsDtype::kF32, {3}, std::string(8, '\0')}}});
  EXPECT_FALSE(bytes.ok());
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("\"w\""));
}

}  // namespace
}  // namespace shrink::worker
