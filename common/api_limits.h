// The limits a submitted job must respect, in one place: the coordinator enforces
// them (server/job_spec_validation.cc) and proto/ documents them (a test checks that
// the comments state these values).
#pragma once

namespace shrink {

inline constexpr int kMaxJobNameChars = 256;          // JobSpec.name
inline constexpr int kMaxClientRequestIdChars = 128;  // JobSpec.client_request_id
inline constexpr int kMaxModelFiles = 16;             // JobSpec.model_files
inline constexpr int kMaxDataFiles = 64;              // TaskSpec.data_files
inline constexpr int kMaxFileNameChars = 255;         // FileRef.name
inline constexpr int kMaxFileOriginChars = 4096;      // FileRef.origin
inline constexpr int kMaxBudget = 100000;             // JobSpec.budget
inline constexpr int kMaxInFlight = 4096;             // JobSpec.max_in_flight
inline constexpr double kMaxRewardWeight = 1000;      // each RewardWeights field

}  // namespace shrink
