// A candidate's measurements against the uncompressed baseline's: the ratios the reward uses.
#pragma once

#include "shrink/v1/types.pb.h"

namespace shrink::worker {

// Quality kept: the accuracy ratio for classifiers, baseline / candidate perplexity for language
// models (perplexity > 0 marks one); 0 when the ratio is undefined.
double Retention(double candidate_accuracy, double candidate_perplexity, double baseline_accuracy,
                 double baseline_perplexity);

// The candidate's metrics next to the baseline's, with the ratios filled in.
v1::Evaluation CompareToBaseline(const v1::Metrics& candidate, const v1::Metrics& baseline);

}  // namespace shrink::worker
