// The median of a sample, as every latency figure in Shrink reports it. Header-only.
#pragma once

#include <algorithm>
#include <vector>

namespace shrink {

// The middle value (the mean of the two middle ones for an even count); 0 for no values.
inline double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace shrink
