// `shrink pretrain` below the CLI: the corpus (GCIDE cleaning, held-out task texts kept out,
// de-duplication, the seeded split), BERT's masking, and tiny BERT / RoBERTa / GPT-2 runs that
// learn, write Hugging Face's pretraining names, load back into Shrink, fine-tune with --init,
// and resume from a pause to exactly the weights of an uninterrupted run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <set>
#include <string>
#include <vector>

#include "common/files.h"
#include "worker/checkpoint/safetensors.h"
#include "worker/checkpoint/transformer_checkpoint.h"
#include "worker/data/pretrain_corpus.h"
#include "worker/data/text_data.h"
#include "worker/nn/device.h"
#include "worker/tokenizers/tokenizer.h"
#include "worker/train/mlm_masking.h"
#include "worker/train/pretrain.h"
#include "worker/train/train.h"
#include "tests/worker/model_test_util.h"

namespace shrink::worker {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kGcide[] =
    "\n\n00-database-url\n   ftp://ftp.gnu.org/gnu/gcide\n\n"
    "A \\A\\ (named [=a] in the English), the first letter of the English alphabet.\n   [1913 Webster]\n\n"
    "Abjure \\Ab*jure\"\\, v. t. [imp. & p. p. {Abjured}; p. pr. & vb.\n   n. {Abjuring}.] [L. abjurare to deny upon oath; ab + jurare\n"
    "   to swear.]\n   1. To renounce upon oath; to forswear; to disavow; as, to\n      abjure allegiance to a prince.\n      [1913 Webster]\n\n"
    "   Syn: See {Renounce}.\n        [1913 Webster]\n\n"
    "Abacus \\Ab\"a*cus\\, n.\n   1. a tray of sand for writing mathematics; a counting frame\n      [WordNet 1.5]\n\n";

TEST(PretrainCorpusTest, GcideIsCleanedOfTagsAndWordnetQuotesAreDropped) {
  std::vector<std::string> documents = ParseGcide(kGcide);
  ASSERT_EQ(documents.size(), 2u);
  EXPECT_EQ(documents[0], "A (named in the English), the first letter of the English alphabet.");
  EXPECT_EQ(documents[1], "Abjure, v. t. 1. To renounce upon oath; to forswear; to disavow; as, to abjure allegiance to a prince.");
}

// Fake package folders: GCIDE, WordNet with glosses in every split, and one fortune file.
struct FakePackages {
  explicit FakePackages(const TempDir& dir) {
    paths.gcide_file = dir.Sub("gcide.dict");
    paths.wordnet_dir = dir.Sub("wordnet");
    paths.fortunes_dir = dir.Sub("fortunes");
    EXPECT_TRUE(MakeDirs(paths.wordnet_dir).ok() && MakeDirs(paths.fortunes_dir).ok());
    EXPECT_TRUE(WriteFileAtomic(paths.gcide_file, kGcide).ok());
    std::string nouns;
    for (int i = 0; i < 60; ++i) {
      std::string gloss = "a thing of kind number " + std::to_string(i);
      glosses.push_back(gloss);
      nouns += "0000" + std::to_string(1000 + i) + " 03 n 01 thing 0 000 | " + gloss + "\n";
    }
    EXPECT_TRUE(WriteFileAtomic(paths.wordnet_dir + "/data.noun", nouns).ok());
    EXPECT_TRUE(WriteFileAtomic(paths.wordnet_dir + "/data.verb", "").ok());
    EXPECT_TRUE(WriteFileAtomic(paths.wordnet_dir + "/data.adj", "").ok());
    EXPECT_TRUE(WriteFileAtomic(paths.wordnet_dir + "/data.adv", "").ok());
    // The second fortune repeats a WordNet gloss (up to case): kept once.
    EXPECT_TRUE(WriteFileAtomic(paths.fortunes_dir + "/science", "A thing of kind NUMBER 1\n%\nYou will be lucky.\n%\n").ok());
  }
  CorpusPaths paths;
  std::vector<std::string> glosses;
};

TEST(PretrainCorpusTest, TaskTextsOutsideTheirTrainSplitNeverEnterAndRepeatsAreDropped) {
  TempDir dir;
  FakePackages packages(dir);
  auto corpus = BuildPretrainCorpus("gcide,wordnet,fortunes", 7, 0.1, packages.paths);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  std::multiset<std::string> all(corpus->train.begin(), corpus->train.end());
  all.insert(corpus->validation.begin(), corpus->validation.end());
  int64_t held_out = 0, kept = 0;
  for (const std::string& gloss : packages.glosses) {
    const bool train = SplitOf(NormalizeText(gloss)) == TextSplit::kTrain;
    EXPECT_EQ(all.count(gloss), train ? 1u : 0u) << gloss;
    (train ? kept : held_out) += 1;
  }
  ASSERT_GT(held_out, 0);  // the fake glosses land in every split
  ASSERT_EQ(corpus->sources.size(), 3u);
  EXPECT_EQ(corpus->sources[0].name, "gcide");
  EXPECT_EQ(corpus->sources[0].documents, 2);
  EXPECT_EQ(corpus->sources[1].documents, kept);
  EXPECT_EQ(corpus->sources[1].held_out, held_out);
  const bool repeat_is_train = SplitOf(NormalizeText("A thing of kind NUMBER 1")) == TextSplit::kTrain;
  const bool lucky_is_train = SplitOf(NormalizeText("You will be lucky.")) == TextSplit::kTrain;
  EXPECT_EQ(corpus->sources[2].duplicates, repeat_is_train ? 1 : 0);
  EXPECT_EQ(corpus->sources[2].held_out, (repeat_is_train ? 0 : 1) + (lucky_is_train ? 0 : 1));
  EXPECT_EQ(corpus->sources[2].documents, lucky_is_train ? 1 : 0);
  EXPECT_EQ(static_cast<int64_t>(all.size()), 2 + kept + corpus->sources[2].documents);
  EXPECT_EQ(corpus->validation.size(), std::max<size_t>(1, static_cast<size_t>(0.1 * static_cast<double>(all.size()))));

  // The split follows the seed, and only the seed.
  auto again = BuildPretrainCorpus("gcide,wordnet,fortunes", 7, 0.1, packages.paths);
  auto other = BuildPretrainCorpus("gcide,wordnet,fortunes", 8, 0.1, packages.paths);
  ASSERT_TRUE(again.ok() && other.ok());
  EXPECT_EQ(again->train, corpus->train);
  EXPECT_NE(other->train, corpus->train);
}

TEST(PretrainCorpusTest, BadSourcesAreNamed) {
  TempDir dir;
  FakePackages packages(dir);
  CorpusPaths missing = packages.paths;
  missing.gcide_file = dir.Sub("absent.dict.dz");
  auto no_package = BuildPretrainCorpus("gcide", 0, 0.01, missing);
  EXPECT_EQ(no_package.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(no_package.status().message(), HasSubstr("dict-gcide"));
  auto unknown = BuildPretrainCorpus("gcide,novels.txt", 0, 0.01, packages.paths);
  EXPECT_THAT(unknown.status().message(), HasSubstr("novels.txt is neither gcide, wordnet, fortunes nor an existing text file"));
  EXPECT_THAT(BuildPretrainCorpus("gcide,gcide", 0, 0.01, packages.paths).status().message(), HasSubstr("named twice"));
}

TEST(MlmMaskingTest, FifteenPercentOfOrdinaryTokensSplitEightyTenTen) {
  const int64_t vocab = 1000, rows = 256;
  torch::manual_seed(1);
  torch::Tensor ids = torch::randint(5, vocab, {rows, 128}, torch::kLong);
  ids.select(1, 0).fill_(2);  // [CLS]
  ids.select(1, 127).fill_(3);  // [SEP]
  at::Generator generator = at::detail::createCPUGenerator(42);
  MaskedBatch batch = MaskForMlm(ids, 4, {0, 1, 2, 3, 4}, vocab, generator);
  const torch::Tensor chosen = batch.labels.ne(-100);
  const double ordinary = static_cast<double>(rows) * 126;
  const double n = chosen.sum().item<double>();
  EXPECT_NEAR(n / ordinary, 0.15, 0.01);
  EXPECT_FALSE(chosen.select(1, 0).any().item<bool>());
  EXPECT_FALSE(chosen.select(1, 127).any().item<bool>());
  EXPECT_TRUE(batch.labels.masked_select(chosen).equal(ids.masked_select(chosen)));
  const double masked = batch.inputs.eq(4).logical_and(chosen).sum().item<double>();
  const double kept = batch.inputs.eq(ids).logical_and(chosen).sum().item<double>();
  EXPECT_NEAR(masked / n, 0.8, 0.025);
  EXPECT_NEAR(kept / n, 0.1 + 0.1 / 995, 0.02);  // kept, or replaced by itself
  EXPECT_TRUE(batch.inputs.masked_select(chosen.logical_not()).equal(ids.masked_select(chosen.logical_not())));
  EXPECT_GE(batch.inputs.masked_select(chosen.logical_and(batch.inputs.ne(4))).min().item<int64_t>(), 5);
}

// Short documents with a grammar a tiny model learns within a few dozen steps.
PretrainCorpus ToyCorpus() {
  const std::vector<std::string> animals = {"cat", "dog", "horse", "bird", "fish", "cow"};
  const std::vector<std::string> foods = {"grass", "seeds", "meat", "milk", "bread", "corn"};
  PretrainCorpus corpus;
  corpus.spec = "toy";
  for (int i = 0; i < 240; ++i) {
    const std::string& a = animals[i % animals.size()];
    std::string doc = "the " + a + " eats " + foods[i % foods.size()] + " and the " + a + " sleeps in the barn number " +
                      std::to_string(i % 17) + ".";
    (i % 20 == 0 ? corpus.validation : corpus.train).push_back(doc);
  }
  corpus.sources.push_back({"toy", 240, 0, 0, 0});
  return corpus;
}

PretrainOptions Tiny(const std::string& arch) {
  PretrainOptions options;
  options.arch = arch;
  options.preset = "tiny";
  options.vocab_size = arch == "bert" ? 120 : 300;
  options.max_length = 32;
  options.batch_size = 8;
  options.steps = 60;
  options.learning_rate = 3e-3;
  options.threads = 1;
  options.evaluations = 2;
  return options;
}

std::set<std::string> TensorNames(const std::string& dir) {
  auto file = SafetensorsFile::Open(dir + "/model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  std::set<std::string> names;
  if (file.ok()) {
    for (const auto& [name, view] : (*file)->tensors()) names.insert(name);
  }
  return names;
}

TEST(PretrainTest, BertLearnsWritesHuggingFaceMaskedLmAndFineTunes) {
  TempDir dir;
  std::vector<std::string> lines;
  auto report = Pretrain(ToyCorpus(), Tiny("bert"), dir.Sub("bert"), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->finished);
  EXPECT_EQ(report->steps_done, 60);
  EXPECT_EQ(report->tokens_seen, 60 * 8 * 32);
  EXPECT_GT(report->validation_accuracy, 0.3);
  bool eta = false;
  for (const auto& l : lines) eta = eta || (l.find("tokens/s") != std::string::npos && l.find("ETA") != std::string::npos);
  EXPECT_TRUE(eta) << "no progress line with throughput and ETA";

  auto record = ReadFile(dir.Sub("bert/pretraining.json"));
  ASSERT_TRUE(record.ok());
  EXPECT_THAT(*record, HasSubstr("\"validation_accuracy\""));
  EXPECT_FALSE(PathExists(dir.Sub("bert/pretrain-state")));
  auto config = ReadFile(dir.Sub("bert/config.json"));
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(*config, HasSubstr("BertForMaskedLM"));
  const std::set<std::string> names = TensorNames(dir.Sub("bert"));
  for (const char* name : {"cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.bias",
                           "cls.predictions.bias", "bert.embeddings.word_embeddings.weight",
                           "bert.encoder.layer.1.output.dense.weight"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  EXPECT_EQ(names.count("bert.pooler.dense.weight"), 0u);
  EXPECT_EQ(names.count("classifier.weight"), 0u);

  // Validation loss fell from the untrained model's.
  const size_t first = record->find("\"validation_loss\": ");
  const size_t last = record->rfind("\"validation_loss\": ");
  ASSERT_NE(first, last);
  EXPECT_LT(std::stod(record->substr(last + 19)), std::stod(record->substr(first + 19)) - 1.0);

  // Shrink loads it as a task model would (the MLM head ignored, a new classification head) ...
  auto loaded = ReadTransformerCheckpoint(dir.Sub("bert"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto tokenizer = LoadTokenizer(dir.Sub("bert"));
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)->VocabSize(), loaded->config.vocab_size);
  EXPECT_GE((*tokenizer)->Specials().mask, 0);

  // ... and shrink train --init fine-tunes it.
  TextDataset task;
  task.task = "classification";
  task.label_names = {"farm", "sea"};
  for (int i = 0; i < 200; ++i) {
    TextExample e{(i % 2 ? "the fish swims in the sea " : "the cow eats grass in the barn ") + std::to_string(i), i % 2};
    (i % 5 == 3 ? task.validation : i % 5 == 4 ? task.test : task.train).push_back(e);
  }
  TrainOptions fine;
  fine.init_dir = dir.Sub("bert");
  fine.epochs = 6;
  fine.batch_size = 8;
  fine.learning_rate = 1e-3;
  fine.threads = 1;
  auto tuned = TrainTransformer("bert", task, fine, dir.Sub("tuned"), nullptr);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_EQ(tuned->test_accuracy, 1.0);
}

TEST(PretrainTest, MicroBatchesAccumulateOneStep) {
  TempDir dir;
  PretrainOptions whole = Tiny("bert"), parts = Tiny("bert");
  parts.micro_batch = 3;  // passes of 3, 3 and 2 rows
  auto a = Pretrain(ToyCorpus(), whole, dir.Sub("whole"), nullptr);
  auto b = Pretrain(ToyCorpus(), parts, dir.Sub("parts"), nullptr);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(b->tokens_seen, a->tokens_seen);
  EXPECT_GT(b->validation_accuracy, 0.3);
  // Dropout draws differ between the two, so the runs agree closely, not exactly.
  EXPECT_NEAR(b->validation_loss, a->validation_loss, 0.25);
}

TEST(PretrainTest, ResumingAfterAPauseEndsWithTheWeightsOfAnUninterruptedRun) {
  TempDir dir;
  PretrainOptions options = Tiny("bert");
  options.steps = 12;
  ASSERT_TRUE(Pretrain(ToyCorpus(), options, dir.Sub("straight"), nullptr).ok());

  PretrainOptions paused = options;
  paused.pause_after = 5;
  auto first = Pretrain(ToyCorpus(), paused, dir.Sub("resumed"), nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->finished);
  EXPECT_EQ(first->steps_done, 5);
  EXPECT_TRUE(PathExists(dir.Sub("resumed/pretrain-state/state.json")));
  EXPECT_FALSE(PathExists(dir.Sub("resumed/model.safetensors")));

  // Starting over into the same folder is refused; resuming with other options too.
  auto again = Pretrain(ToyCorpus(), options, dir.Sub("resumed"), nullptr);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("--resume"));
  PretrainOptions other = options;
  other.resume = true;
  other.batch_size = 4;
  auto mismatch = Pretrain(ToyCorpus(), other, dir.Sub("resumed"), nullptr);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("batch_size is 4 now but 8 in the checkpointed run"));

  PretrainOptions resume = options;
  resume.resume = true;
  auto second = Pretrain(ToyCorpus(), resume, dir.Sub("resumed"), nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->finished);
  auto a = ReadFile(dir.Sub("straight/model.safetensors"));
  auto b = ReadFile(dir.Sub("resumed/model.safetensors"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "a resumed run differs from the uninterrupted one";
}

TEST(PretrainTest, RobertaAndGpt2WriteTheirOwnHeadsAndLoadBack) {
  TempDir dir;
  auto roberta = Pretrain(ToyCorpus(), Tiny("roberta"), dir.Sub("roberta"), nullptr);
  ASSERT_TRUE(roberta.ok()) << roberta.status();
  const std::set<std::string> names = TensorNames(dir.Sub("roberta"));
  for (const char* name : {"lm_head.dense.weight", "lm_head.layer_norm.weight", "lm_head.bias",
                           "roberta.embeddings.position_embeddings.weight"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  auto roberta_tokenizer = LoadTokenizer(dir.Sub("roberta"));
  ASSERT_TRUE(roberta_tokenizer.ok());
  EXPECT_EQ((*roberta_tokenizer)->Specials().cls, 0);  // <s>
  EXPECT_EQ((*roberta_tokenizer)->IdToToken((*roberta_tokenizer)->Specials().mask), "<mask>");
  EXPECT_TRUE(ReadTransformerCheckpoint(dir.Sub("roberta")).ok());

  auto gpt2 = Pretrain(ToyCorpus(), Tiny("gpt2"), dir.Sub("gpt2"), nullptr);
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_LT(gpt2->validation_perplexity, 20);  // the vocabulary has 300 tokens
  auto loaded = ReadTransformerCheckpoint(dir.Sub("gpt2"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->config.is_decoder());
}

TEST(PretrainTest, BadOptionsAreRefusedByName) {
  TempDir dir;
  PretrainOptions options = Tiny("bert");
  options.arch = "t5";
  EXPECT_THAT(Pretrain(ToyCorpus(), options, dir.Sub("x"), nullptr).status().message(), HasSubstr("arch t5"));
  options = Tiny("bert");
  options.max_length = 512;
  EXPECT_THAT(Pretrain(ToyCorpus(), options, dir.Sub("x"), nullptr).status().message(),
              HasSubstr("max_length 512 is longer than the tiny preset's 128 positions"));
  options = Tiny("bert");
  options.resume = true;
  EXPECT_EQ(Pretrain(ToyCorpus(), options, dir.Sub("x"), nullptr).status().code(), absl::StatusCode::kNotFound);
  if (CudaDeviceCount() == 0) {
    options = Tiny("bert");
    options.device = "cuda:0";
    auto status = Pretrain(ToyCorpus(), options, dir.Sub("x"), nullptr).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("cuda"));
  }
  EXPECT_FALSE(PathExists(dir.Sub("x/model.safetensors")));
}

}  // namespace
}  // namespace shrink::worker
