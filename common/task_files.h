// Where a task's data lives on this machine and the names its files travel under, shared by
// the remote client (which uploads them), the embedded CLI and the worker. Torch-free.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace shrink {

// Where the package dataset-fashion-mnist installs its idx files.
inline constexpr char kDebianFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
// Where the packages `fortunes` and `fortunes-min` install their files.
inline constexpr char kDebianFortunesDir[] = "/usr/share/games/fortunes";

// Where the package wordnet-base installs WordNet 3.0's database.
inline constexpr char kDebianWordnetDir[] = "/usr/share/wordnet";

// Where the package dict-gcide installs the GNU Collaborative International Dictionary of
// English (dictzip, i.e. gzip-compatible): pretraining text, not a task.
inline constexpr char kDebianGcideFile[] = "/usr/share/dictd/gcide.dict.dz";

// Fashion-MNIST's four file names, as a task's data_files name them.
inline constexpr char kFashionMnistTrainImages[] = "train-images-idx3-ubyte.gz";
inline constexpr char kFashionMnistTrainLabels[] = "train-labels-idx1-ubyte.gz";
inline constexpr char kFashionMnistTestImages[] = "t10k-images-idx3-ubyte.gz";
inline constexpr char kFashionMnistTestLabels[] = "t10k-labels-idx1-ubyte.gz";

// The Debian package's files: name -> /usr/share/datasets/fashion-mnist/<name> (not checked).
std::map<std::string, std::string> DebianFashionMnistFiles();

// The fortune files in `dir`: file name -> path, data files only (no .dat index
// or .u8 link). Sub-folders such as off/ (the offensive set of fortunes-off) are
// not included. Empty when the folder is missing.
std::map<std::string, std::string> DebianFortunesFiles(const std::string& dir = kDebianFortunesDir);

// The files a task reads on this machine, by the name they travel under: Fashion-MNIST's
// idx files, the fortune files by category, WordNet's data.{adj,adv,noun,verb}, or a user's file (JSONL / TSV classification,
// .txt language modelling) under its base name. NotFound names the Debian package to install.
absl::StatusOr<std::map<std::string, std::string>> LocalTaskFiles(const std::string& task);

}  // namespace shrink
