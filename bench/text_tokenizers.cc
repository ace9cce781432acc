// The fortunes text tasks and the tokenizers learned on them: entries per
// category, split sizes, vocabulary build time and single-thread tokenization
// throughput of WordPiece and byte-level BPE on the fortunes-lm text.
// Usage: bench_text_tokenizers [VOCAB_SIZE=8192]. Times are this thread's CPU
// time (one thread throughout), so that a busy machine does not inflate them;
// the wall time of the whole run is printed last. Prints Markdown tables; it
// never fails on a time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/files.h"
#include "worker/data/text_data.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/tokenizers/vocab_learner.h"

namespace {

// CPU seconds used by this thread so far.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Seconds(double start) { return CpuNow() - start; }

std::vector<std::string> Texts(const std::vector<shrink::worker::TextExample>& examples) {
  std::vector<std::string> texts;
  for (const auto& e : examples) texts.push_back(e.text);
  return texts;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shrink;
  using namespace shrink::worker;
  const int vocab_size = argc > 1 ? std::atoi(argv[1]) : 8192;
  const auto wall_start = std::chrono::steady_clock::now();
  const auto files = DebianFortunesFiles();
  if (files.empty()) {
    std::fprintf(stderr, "bench_text_tokenizers: no fortune files in %s\n", kDebianFortunesDir);
    return 1;
  }

  std::printf("| category | entries | bytes |\n|---|---:|---:|\n");
  int64_t total_entries = 0, total_bytes = 0;
  for (const auto& [name, path] : files) {
    auto contents = shrink::ReadFile(path);
    if (!contents.ok()) continue;
    const auto entries = ParseFortunes(*contents);
    int64_t bytes = 0;
    for (const auto& e : entries) bytes += static_cast<int64_t>(e.size());
    std::printf("| %s%s | %zu | %lld |\n", name.c_str(),
                GenericFortuneCategories().count(name) ? " (generic)" : "", entries.size(),
                static_cast<long long>(bytes));
    total_entries += static_cast<int64_t>(entries.size());
    total_bytes += bytes;
  }
  std::printf("| **all %zu files** | %lld | %lld |\n\n", files.size(), static_cast<long long>(total_entries),
              static_cast<long long>(total_bytes));

  auto start = CpuNow();
  auto topic = LoadFortunesTopic(files);
  const double topic_s = Seconds(start);
  start = CpuNow();
  auto lm = LoadFortunesLm(files);
  const double lm_s = Seconds(start);
  if (!topic.ok() || !lm.ok()) {
    std::fprintf(stderr, "bench_text_tokenizers: %s\n",
                 std::string((topic.ok() ? lm.status() : topic.status()).message()).c_str());
    return 1;
  }
  std::printf("| task | classes | train | validation | test | load CPU s |\n|---|---:|---:|---:|---:|---:|\n");
  std::printf("| fortunes-topic | %zu | %zu | %zu | %zu | %.2f |\n", topic->label_names.size(), topic->train.size(),
              topic->validation.size(), topic->test.size(), topic_s);
  std::printf("| fortunes-lm | - | %zu | %zu | %zu | %.2f |\n\n", lm->train.size(), lm->validation.size(),
              lm->test.size(), lm_s);

  std::printf("fortunes-topic classes (train / validation / test):");
  for (size_t label = 0; label < topic->label_names.size(); ++label) {
    int counts[3] = {0, 0, 0};
    for (const auto& e : topic->train) counts[0] += e.label == static_cast<int64_t>(label);
    for (const auto& e : topic->validation) counts[1] += e.label == static_cast<int64_t>(label);
    for (const auto& e : topic->test) counts[2] += e.label == static_cast<int64_t>(label);
    std::printf("%s %s %d/%d/%d", label ? "," : "", topic->label_names[label].c_str(), counts[0], counts[1],
                counts[2]);
  }
  std::printf("\n\n");

  const std::vector<std::string> train = Texts(lm->train);
  int64_t train_bytes = 0;
  for (const auto& t : train) train_bytes += static_cast<int64_t>(t.size());
  std::printf("vocabulary size %d, learned on the fortunes-lm train split (%zu texts, %.2f MB); "
              "throughput = tokenizing that split once, one thread\n\n",
              vocab_size, train.size(), train_bytes / 1e6);
  std::printf("| tokenizer | build CPU s | vocab | tokens | bytes/token | tokens/s | MB/s | [UNK] %% |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const bool bpe : {false, true}) {
    start = CpuNow();
    auto tok = bpe ? BuildByteBpeTokenizer(train, vocab_size) : BuildWordPieceTokenizer(train, vocab_size, true);
    const double build_s = Seconds(start);
    if (!tok.ok()) {
      std::fprintf(stderr, "bench_text_tokenizers: %s\n", std::string(tok.status().message()).c_str());
      return 1;
    }
    int64_t tokens = 0, unknown = 0;
    const int64_t unk = (*tok)->Specials().unk;
    start = CpuNow();
    for (const auto& t : train) {
      for (int64_t id : (*tok)->Encode(t)) {
        ++tokens;
        unknown += (!bpe && id == unk);
      }
    }
    const double encode_s = Seconds(start);
    std::printf("| %s | %.2f | %lld | %lld | %.2f | %.0f | %.2f | %.3f |\n",
                bpe ? "byte-level BPE (GPT-2)" : "WordPiece (BERT, uncased)", build_s,
                static_cast<long long>((*tok)->VocabSize()), static_cast<long long>(tokens),
                static_cast<double>(train_bytes) / tokens, tokens / encode_s, train_bytes / 1e6 / encode_s,
                100.0 * unknown / tokens);
  }
  std::printf("\nwall time of the whole run: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count());
  return 0;
}
