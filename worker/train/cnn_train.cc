// Training the reference CNN from scratch, deterministically for a seed.
#include <chrono>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "worker/nn/cnn.h"
#include "worker/checkpoint/cnn_checkpoint.h"
#include "worker/data/fashion_mnist.h"
#include "worker/model/model.h"
#include "worker/train/train.h"
#include "worker/nn/device.h"
#include "worker/nn/cnn_build.h"

namespace shrink::worker {
namespace {

// Fisher-Yates with a plain modulo draw: unlike std::shuffle, the same on every standard library.
void Shuffle(std::vector<int64_t>& order, std::mt19937_64& rng) {
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
}

}  // namespace

absl::StatusOr<TrainReport> TrainCnn(const ImageDataset& data, const TrainOptions& options,
                                     const std::string& out_dir,
                                     const std::function<void(const std::string&)>& progress) {
  if (options.epochs < 1 || options.batch_size < 1 || !(options.learning_rate > 0) || options.max_train_examples < 0) {
    return absl::InvalidArgumentError("TrainOptions: epochs, batch_size and learning_rate must be positive");
  }
  SHRINK_ASSIGN_OR_RETURN(const ImageDataset::Impl::Split* train, FindSplit(data, "train"));
  SHRINK_ASSIGN_OR_RETURN(const ImageDataset::Impl::Split* validation, FindSplit(data, "validation"));
  SHRINK_ASSIGN_OR_RETURN(const ImageDataset::Impl::Split* test, FindSplit(data, "test"));
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    const int threads = ConfigureTorch(options.threads);
    torch::manual_seed(options.seed);
    Cnn net;
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(options.learning_rate));
    const int64_t available = train->labels.size(0);
    const int64_t count = options.max_train_examples > 0 ? std::min(options.max_train_examples, available) : available;
    std::vector<int64_t> order(count);
    for (int64_t i = 0; i < count; ++i) order[i] = i;
    std::mt19937_64 rng(options.seed);
    double validation_accuracy = 0;  // of the last epoch, which is the final model
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      net->train();
      Shuffle(order, rng);
      double loss_sum = 0;
      int64_t batches = 0;
      for (int64_t begin = 0; begin < count; begin += options.batch_size) {
        const int64_t size = std::min<int64_t>(options.batch_size, count - begin);
        torch::Tensor index = torch::from_blob(order.data() + begin, {size}, torch::kInt64);
        torch::Tensor images = train->images.index_select(0, index);
        torch::Tensor labels = train->labels.index_select(0, index);
        optimizer.zero_grad();
        torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(images), labels);
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>();
        ++batches;
      }
      net->eval();
      validation_accuracy = CnnAccuracy(net, validation->images, validation->labels).first;
      if (progress) {
        progress(absl::StrFormat("epoch %d/%d: loss %.4f, validation accuracy %.2f%%, %.1f s (%d threads)", epoch,
                                 options.epochs, loss_sum / std::max<int64_t>(1, batches),
                                 100 * validation_accuracy, elapsed(), threads));
      }
    }
    net->eval();
    TrainReport report;
    report.validation_accuracy = validation_accuracy;
    report.test_accuracy = CnnAccuracy(net, test->images, test->labels).first;
    for (const auto& parameter : net->parameters()) report.params += parameter.numel();
    SHRINK_RETURN_IF_ERROR(WriteCnnCheckpoint(CheckpointFromModule(net), out_dir));
    report.seconds = elapsed();
    return report;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what()));
  }
}

}  // namespace shrink::worker
