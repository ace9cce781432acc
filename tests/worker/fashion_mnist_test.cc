// Fashion-MNIST loading: the Debian files, raw idx files, corrupt files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include "common/files.h"
#include "tests/worker/model_test_util.h"
#include "worker/data/fashion_mnist.h"

namespace shrink::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

std::string BigEndian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string ImagesIdx(uint32_t count, uint32_t side = 28) {
  std::string out = std::string("\0\0\x08\x03", 4) + BigEndian(count) + BigEndian(side) + BigEndian(side);
  for (uint32_t i = 0; i < count * side * side; ++i) out.push_back(static_cast<char>(i % 251));
  return out;
}

std::string LabelsIdx(uint32_t count) {
  std::string out = std::string("\0\0\x08\x01", 4) + BigEndian(count);
  for (uint32_t i = 0; i < count; ++i) out.push_back(static_cast<char>(i % 10));
  return out;
}

std::string Gzip(const std::string& raw) {
  z_stream stream{};
  deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, raw.size()) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  stream.avail_in = raw.size();
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = out.size();
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Writes a small dataset (raw idx) into `dir`; returns the file map.
std::map<std::string, std::string> WriteSmallDataset(const TempDir& dir, uint32_t train_count = 5010,
                                                     uint32_t test_count = 7) {
  std::map<std::string, std::string> files = {
      {"train-images-idx3-ubyte.gz", ImagesIdx(train_count)},
      {"train-labels-idx1-ubyte.gz", LabelsIdx(train_count)},
      {"t10k-images-idx3-ubyte.gz", ImagesIdx(test_count)},
      {"t10k-labels-idx1-ubyte.gz", LabelsIdx(test_count)}};
  std::map<std::string, std::string> paths;
  for (const auto& [name, contents] : files) {
    paths[name] = dir.Sub(name + ".raw");
    EXPECT_TRUE(WriteFileAtomic(paths[name], contents).ok());
  }
  return paths;
}

TEST(FashionMnistTest, LoadsTheDebianFiles) {
  const ImageDataset& data = testing::FashionMnist();
  EXPECT_EQ(data.Size("train"), 55000);
  EXPECT_EQ(data.Size("validation"), 5000);
  EXPECT_EQ(data.Size("test"), 10000);
  EXPECT_EQ(data.Size("bogus"), 0);
  const auto& train = data.impl->train;
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{55000, 1, 28, 28}));
  EXPECT_EQ(train.images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(train.labels.scalar_type(), torch::kInt64);
  EXPECT_NEAR(train.images.mean().item<double>(), 0.0, 0.05);  // normalized
  EXPECT_NEAR(train.images.std().item<double>(), 1.0, 0.05);
  EXPECT_EQ(data.impl->test.labels.min().item<int64_t>(), 0);
  EXPECT_EQ(data.impl->test.labels.max().item<int64_t>(), 9);
  // Balanced classes: 1000 test images each.
  EXPECT_EQ(data.impl->test.labels.eq(3).sum().item<int64_t>(), 1000);
}

TEST(FashionMnistTest, AcceptsRawAndGzipIdx) {
  TempDir dir;
  auto paths = WriteSmallDataset(dir);
  // One of the files gzip-compressed, the rest raw.
  auto raw = ReadFile(paths["t10k-images-idx3-ubyte.gz"]);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(WriteFileAtomic(paths["t10k-images-idx3-ubyte.gz"], Gzip(*raw)).ok());
  auto data = ImageDataset::LoadFashionMnist(paths);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ((*data)->Size("train"), 10);
  EXPECT_EQ((*data)->Size("validation"), 5000);
  EXPECT_EQ((*data)->Size("test"), 7);
  EXPECT_EQ((*data)->impl->test.labels[6].item<int64_t>(), 6);
}

TEST(FashionMnistTest, RejectsCorruptFiles) {
  TempDir dir;
  auto paths = WriteSmallDataset(dir);
  auto expect_error = [&](const std::string& name, const std::string& contents, const std::string& what) {
    auto broken = paths;
    broken[name] = dir.Sub("broken");
    ASSERT_TRUE(WriteFileAtomic(broken[name], contents).ok());
    auto data = ImageDataset::LoadFashionMnist(broken);
    ASSERT_FALSE(data.ok()) << name;
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(data.status().message()), AllOf(HasSubstr(name), HasSubstr(what)));
  };
  std::string images = ImagesIdx(7);
  std::string bad_magic = images;
  bad_magic[2] = 0x0d;
  expect_error("t10k-images-idx3-ubyte.gz", bad_magic, "magic");
  expect_error("t10k-images-idx3-ubyte.gz", images.substr(0, images.size() - 100), "truncated");
  expect_error("t10k-images-idx3-ubyte.gz", images.substr(0, 10), "truncated");
  expect_error("t10k-images-idx3-ubyte.gz", ImagesIdx(7, 20), "20x20");
  expect_error("t10k-labels-idx1-ubyte.gz", LabelsIdx(8), "count mismatch");
  std::string gz = Gzip(images);
  expect_error("t10k-images-idx3-ubyte.gz", gz.substr(0, gz.size() / 2), "gzip");
  std::string bad_label = LabelsIdx(7);
  bad_label.back() = 12;
  expect_error("t10k-labels-idx1-ubyte.gz", bad_label, "label 12");
  expect_error("train-images-idx3-ubyte.gz", ImagesIdx(100), "");  // too few for a validation split

  auto missing = paths;
  missing.erase("train-labels-idx1-ubyte.gz");
  auto data = ImageDataset::LoadFashionMnist(missing);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("train-labels-idx1-ubyte.gz"));
  missing = paths;
  missing["t10k-labels-idx1-ubyte.gz"] = dir.Sub("does-not-exist");
  EXPECT_FALSE(ImageDataset::LoadFashionMnist(missing).ok());
}

TEST(FashionMnistTest, ParseIdxChecksTrailingBytes) {
  auto parsed = ParseIdx(LabelsIdx(4) + "xx", "labels", 1);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("2 unexpected bytes"));
}

}  // namespace
}  // namespace shrink::worker
