// Tests for common/files.h and common/sha256.h.
#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/sha256.h"

namespace shrink {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcSha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlockMessage[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr char kTwoBlockSha[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kMillionASha[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("files_test_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override { RemoveAll(dir_); }

  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    return names;
  }

  std::string dir_;
};

TEST_F(FilesTest, WriteThenReadReturnsTheSameBytes) {
  std::string contents("binary\0data\xff\n", 13);
  const std::string path = dir_ + "/blob.bin";
  ASSERT_TRUE(WriteFileAtomic(path, contents).ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
}

TEST_F(FilesTest, WriteEmptyFileThenReadIsEmpty) {
  const std::string path = dir_ + "/empty";
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
  EXPECT_EQ(*FileSize(path), 0);
}

TEST_F(FilesTest, WriteLargeFileThenRead) {
  std::string contents(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < contents.size(); i += 4096) contents[i] = static_cast<char>(i / 4096);
  const std::string path = dir_ + "/large";
  ASSERT_TRUE(WriteFileAtomic(path, contents).ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
}

TEST_F(FilesTest, WriteReplacesExistingFile) {
  const std::string path = dir_ + "/config.json";
  ASSERT_TRUE(WriteFileAtomic(path, "a much longer first version").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "v2").ok());
  EXPECT_EQ(*ReadFile(path), "v2");
}

TEST_F(FilesTest, WriteLeavesNoTemporaryFilesBehind) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "1").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/b", "22").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "333").ok());
  std::vector<std::string> entries = Entries();
  EXPECT_EQ(std::set<std::string>(entries.begin(), entries.end()), (std::set<std::string>{"a", "b"}));
}

TEST_F(FilesTest, WriteIntoMissingDirectoryFailsNamingThePath) {
  const std::string path = dir_ + "/missing/sub/file.txt";
  auto status = WriteFileAtomic(path, "data");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));
  EXPECT_FALSE(PathExists(path));
  EXPECT_TRUE(Entries().empty());
}

TEST_F(FilesTest, WriteOverADirectoryFailsAndLeavesNoTemporaryFile) {
  const std::string path = dir_ + "/sub";
  ASSERT_TRUE(MakeDirs(path).ok());
  auto status = WriteFileAtomic(path, "data");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_EQ(Entries(), std::vector<std::string>{"sub"});
}

TEST_F(FilesTest, ReadMissingFileIsNotFoundNamingThePath) {
  const std::string path = dir_ + "/nope.txt";
  auto read = ReadFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr(path));
}

TEST_F(FilesTest, ReadDirectoryFails) {
  auto read = ReadFile(dir_);
  ASSERT_FALSE(read.ok()) << "read " << read->size() << " bytes";
  EXPECT_THAT(read.status().message(), HasSubstr(dir_));
}

TEST_F(FilesTest, Sha256FileOfDirectoryFails) {
  auto digest = Sha256File(dir_);
  ASSERT_FALSE(digest.ok()) << *digest;
  EXPECT_THAT(digest.status().message(), HasSubstr(dir_));
}

TEST_F(FilesTest, FileSizeOfWrittenFile) {
  const std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(1234, 'z')).ok());
  auto size = FileSize(path);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 1234);
}

TEST_F(FilesTest, FileSizeOfMissingFileIsNotFound) {
  EXPECT_EQ(FileSize(dir_ + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FilesTest, DirectoryBytesSumsRegularFileSizes) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", std::string(100, 'c')).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/model.safetensors", std::string(4000, 'w')).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/empty", "").ok());
  auto bytes = DirectoryBytes(dir_);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, 4100);
}

TEST_F(FilesTest, DirectoryBytesIgnoresSubdirectories) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/top", std::string(10, 't')).ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/nested").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/nested/deep", std::string(500, 'd')).ok());
  EXPECT_EQ(*DirectoryBytes(dir_), 10);
}

TEST_F(FilesTest, DirectoryBytesOfEmptyDirectoryIsZero) {
  auto bytes = DirectoryBytes(dir_);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, 0);
}

TEST_F(FilesTest, DirectoryBytesOfMissingDirectoryIsNotFound) {
  auto bytes = DirectoryBytes(dir_ + "/nope");
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(bytes.status().message(), HasSubstr(dir_ + "/nope"));
}

TEST_F(FilesTest, MakeDirsCreatesParentsAndIsIdempotent) {
  const std::string path = dir_ + "/a/b/c";
  ASSERT_TRUE(MakeDirs(path).ok());
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_TRUE(MakeDirs(path).ok());
}

TEST_F(FilesTest, MakeTempDirUnderParentIsFreshEmptyAndUnique) {
  auto a = MakeTempDir("job_", dir_);
  auto b = MakeTempDir("job_", dir_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->rfind(dir_ + "/job_", 0), 0u) << *a;
  EXPECT_TRUE(fs::is_directory(*a));
  EXPECT_TRUE(fs::is_empty(*a));
  EXPECT_TRUE(fs::is_directory(*b));
}

TEST_F(FilesTest, MakeTempDirDefaultsToSystemTempDir) {
  auto a = MakeTempDir("shrink_files_test_");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(fs::equivalent(fs::path(*a).parent_path(), fs::temp_directory_path())) << *a;
  EXPECT_EQ(fs::path(*a).filename().string().rfind("shrink_files_test_", 0), 0u) << *a;
  EXPECT_TRUE(fs::is_directory(*a));
  RemoveAll(*a);
  EXPECT_FALSE(PathExists(*a));
}

TEST_F(FilesTest, MakeTempDirUnderMissingParentFails) {
  auto a = MakeTempDir("x_", dir_ + "/missing");
  EXPECT_FALSE(a.ok());
}

TEST_F(FilesTest, RemoveAllRemovesTreesAndToleratesMissingPaths) {
  ASSERT_TRUE(MakeDirs(dir_ + "/t/u").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/t/u/f", "x").ok());
  RemoveAll(dir_ + "/t");
  EXPECT_FALSE(PathExists(dir_ + "/t"));
  RemoveAll(dir_ + "/t");  // no crash, nothing to do
  EXPECT_TRUE(PathExists(dir_));
}

// ---- SHA-256 ----

TEST(Sha256Test, EmptyStringMatchesStandardVector) { EXPECT_EQ(Sha256Hex(""), kEmptySha); }

TEST(Sha256Test, AbcMatchesStandardVector) { EXPECT_EQ(Sha256Hex("abc"), kAbcSha); }

TEST(Sha256Test, TwoBlockMessageMatchesStandardVector) { EXPECT_EQ(Sha256Hex(kTwoBlockMessage), kTwoBlockSha); }

TEST(Sha256Test, MillionAsMatchesStandardVector) {
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')), kMillionASha);
}

TEST(Sha256Test, IncrementalUpdatesEqualOneShot) {
  const std::string message = kTwoBlockMessage;
  for (size_t split : {size_t{0}, size_t{1}, size_t{3}, size_t{55}, message.size()}) {
    Sha256 h;
    h.Update(message.substr(0, split));
    h.Update(message.data() + split, message.size() - split);
    EXPECT_EQ(h.HexDigest(), kTwoBlockSha) << split;
  }
}

TEST(Sha256Test, ManySmallUpdatesEqualOneShot) {
  Sha256 h;
  for (int i = 0; i < 1000; ++i) h.Update(std::string(1000, 'a'));
  EXPECT_EQ(h.HexDigest(), kMillionASha);
}

TEST(Sha256Test, NoUpdatesIsTheEmptyDigest) {
  Sha256 h;
  EXPECT_EQ(h.HexDigest(), kEmptySha);
}

TEST(Sha256Test, DigestIsLowerCaseHex) {
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("anything")));
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("")));
}

TEST_F(FilesTest, Sha256FileMatchesDigestOfContent) {
  // Larger than the 64 KiB read buffer and not a multiple of it.
  std::string contents(200 * 1024 + 3, '\0');
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>((i * 31) & 0xff);
  const std::string path = dir_ + "/model.safetensors";
  ASSERT_TRUE(WriteFileAtomic(path, contents).ok());
  auto digest = Sha256File(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, Sha256Hex(contents));
}

TEST_F(FilesTest, Sha256FileOfAbcFile) {
  const std::string path = dir_ + "/abc";
  ASSERT_TRUE(WriteFileAtomic(path, "abc").ok());
  EXPECT_EQ(*Sha256File(path), kAbcSha);
}

TEST_F(FilesTest, Sha256FileOfEmptyFile) {
  const std::string path = dir_ + "/empty";
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  EXPECT_EQ(*Sha256File(path), kEmptySha);
}

TEST_F(FilesTest, Sha256FileOfMissingFileIsNotFoundNamingThePath) {
  auto digest = Sha256File(dir_ + "/nope");
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(digest.status().message(), HasSubstr(dir_ + "/nope"));
}

TEST(IsSha256HexTest, AcceptsLowerCaseDigests) {
  EXPECT_TRUE(IsSha256Hex(kAbcSha));
  EXPECT_TRUE(IsSha256Hex(std::string(64, '0')));
  EXPECT_TRUE(IsSha256Hex(std::string(64, 'f')));
}

TEST(IsSha256HexTest, RejectsUpperCase) {
  std::string upper = kAbcSha;
  upper[0] = 'B';
  EXPECT_FALSE(IsSha256Hex(upper));
}

TEST(IsSha256HexTest, RejectsWrongLength) {
  std::string abc = kAbcSha;
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(abc.substr(0, 63)));
  EXPECT_FALSE(IsSha256Hex(abc + "0"));
}

TEST(IsSha256HexTest, RejectsNonHexCharacters) {
  std::string s = kAbcSha;
  for (char bad : {'g', 'z', ' ', '/', '.', '\0'}) {
    s[10] = bad;
    EXPECT_FALSE(IsSha256Hex(s)) << static_cast<int>(bad);
  }
}

}  // namespace
}  // namespace shrink
