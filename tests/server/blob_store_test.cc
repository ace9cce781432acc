#include "server/storage/blob_store.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/sha256.h"

namespace shrink::server {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("blob_store_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    root_ = dir_ + "/blobs";
    auto store = BlobStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    RemoveAll(dir_);
  }

  // Files under <root>/tmp: uploads in progress or leaked.
  size_t TempFiles() const {
    size_t count = 0;
    for (const auto& entry : fs::directory_iterator(root_ + "/tmp")) {
      (void)entry;
      ++count;
    }
    return count;
  }

  std::string dir_;
  std::string root_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, WriteAndCommitMakesTheBlobVisible) {
  const std::string content = "hello, blob store";
  const std::string digest = Sha256Hex(content);
  EXPECT_FALSE(store_->Has(digest));

  auto writer = store_->StartWrite(digest, static_cast<int64_t>(content.size()));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(content.data(), 5).ok());
  EXPECT_FALSE(store_->Has(digest));  // nothing visible before commit
  ASSERT_TRUE((*writer)->Append(content.data() + 5, content.size() - 5).ok());
  ASSERT_TRUE((*writer)->Commit().ok());

  EXPECT_TRUE(store_->Has(digest));
  EXPECT_EQ(*store_->Size(digest), static_cast<int64_t>(content.size()));
  EXPECT_EQ(store_->PathOf(digest), root_ + "/" + digest.substr(0, 2) + "/" + digest);
  EXPECT_EQ(*ReadFile(store_->PathOf(digest)), content);
  EXPECT_EQ(TempFiles(), 0u);
  // A committed writer takes no more bytes.
  EXPECT_EQ((*writer)->Append("x", 1).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(BlobStoreTest, EmptyBlobCanBeStored) {
  const std::string digest = Sha256Hex("");
  auto writer = store_->StartWrite(digest, 0);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_TRUE(store_->Has(digest));
  EXPECT_EQ(*store_->Size(digest), 0);
}

TEST_F(BlobStoreTest, WrongDigestIsRejectedAndNothingIsVisible) {
  const std::string claimed = Sha256Hex("what the client promised");
  const std::string content = "what the client sent....";
  const std::string actual = Sha256Hex(content);
  auto writer = store_->StartWrite(claimed, static_cast<int64_t>(content.size()));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(content.data(), content.size()).ok());
  absl::Status committed = (*writer)->Commit();
  EXPECT_EQ(committed.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(committed.message()), HasSubstr(claimed));
  EXPECT_THAT(std::string(committed.message()), HasSubstr(actual));
  EXPECT_FALSE(store_->Has(claimed));
  EXPECT_FALSE(store_->Has(actual));
  EXPECT_FALSE(fs::exists(store_->PathOf(claimed)));
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, ShortUploadIsRejected) {
  const std::string content = "twelve bytes";
  auto writer = store_->StartWrite(Sha256Hex(content), 12);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(content.data(), 6).ok());
  absl::Status committed = (*writer)->Commit();
  EXPECT_EQ(committed.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(committed.message()), HasSubstr("6"));
  EXPECT_FALSE(store_->Has(Sha256Hex(content)));
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, BytesBeyondDeclaredSizeAreRejected) {
  const std::string content = "0123456789";
  auto writer = store_->StartWrite(Sha256Hex(content), 4);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(content.data(), 3).ok());
  absl::Status appended = (*writer)->Append(content.data() + 3, 2);
  EXPECT_EQ(appended.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE((*writer)->Commit().ok());
  EXPECT_FALSE(store_->Has(Sha256Hex(content)));
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, OversizeDeclarationIsRejected) {
  store_->set_max_blob_bytes(100);
  const std::string digest = Sha256Hex("anything");
  auto too_big = store_->StartWrite(digest, 101);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("101"));
  EXPECT_EQ(store_->StartWrite(digest, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->StartWrite(digest, 100).ok());
}

TEST_F(BlobStoreTest, MalformedDigestIsRejected) {
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string(64, 'G'),
        Sha256Hex("x").substr(0, 63) + "A", std::string("../../../../etc/passwd")}) {
    auto writer = store_->StartWrite(bad, 1);
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(store_->Has(bad));
    EXPECT_EQ(store_->PathOf(bad), "");
  }
}

TEST_F(BlobStoreTest, AbandonedWriterRemovesItsTempFile) {
  const std::string content = "never committed";
  const std::string digest = Sha256Hex(content);
  {
    auto writer = store_->StartWrite(digest, static_cast<int64_t>(content.size()));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(content.data(), 4).ok());
    EXPECT_EQ(TempFiles(), 1u);
  }
  EXPECT_EQ(TempFiles(), 0u);
  EXPECT_FALSE(store_->Has(digest));
}

TEST_F(BlobStoreTest, SizeOfMissingBlobIsNotFound) {
  const std::string digest = Sha256Hex("missing");
  auto size = store_->Size(digest);
  EXPECT_EQ(size.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(size.status().message()), HasSubstr(digest));
}

TEST_F(BlobStoreTest, PutFileCopiesAndReturnsTheDigest) {
  std::string content(300000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31 + 7);
  const std::string source = dir_ + "/model.safetensors";
  ASSERT_TRUE(WriteFileAtomic(source, content).ok());

  auto digest = store_->PutFile(source);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, Sha256Hex(content));
  EXPECT_TRUE(store_->Has(*digest));
  EXPECT_EQ(*ReadFile(store_->PathOf(*digest)), content);
  EXPECT_TRUE(fs::exists(source));  // a copy, not a move

  // Storing the same content again is fine and changes nothing.
  auto again = store_->PutFile(source);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *digest);
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, PutFileErrors) {
  auto missing = store_->PutFile(dir_ + "/no-such-file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no-such-file"));

  const std::string source = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(source, std::string(1000, 'b')).ok());
  store_->set_max_blob_bytes(999);
  EXPECT_EQ(store_->PutFile(source).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, ReopenKeepsBlobsAndClearsLeftoverUploads) {
  const std::string content = "kept";
  const std::string digest = Sha256Hex(content);
  auto writer = store_->StartWrite(digest, 4);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(content.data(), 4).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  // A crashed upload leaves a temp file behind.
  ASSERT_TRUE(WriteFileAtomic(root_ + "/tmp/crashed.partial", "half").ok());

  auto reopened = BlobStore::Open(root_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->Has(digest));
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(BlobStoreTest, ConcurrentUploadsOfTheSameBlobBothSucceed) {
  const std::string content = "same bytes from two workers";
  const std::string digest = Sha256Hex(content);
  auto first = store_->StartWrite(digest, static_cast<int64_t>(content.size()));
  auto second = store_->StartWrite(digest, static_cast<int64_t>(content.size()));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*first)->Append(content.data(), content.size()).ok());
  ASSERT_TRUE((*second)->Append(content.data(), content.size()).ok());
  EXPECT_TRUE((*first)->Commit().ok());
  EXPECT_TRUE((*second)->Commit().ok());
  EXPECT_EQ(*ReadFile(store_->PathOf(digest)), content);
  EXPECT_EQ(TempFiles(), 0u);
}

}  // namespace
}  // namespace shrink::server
