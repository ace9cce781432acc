#include "worker/service/simulated_runner.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/time/clock.h"

namespace shrink::worker {
namespace {

v1::Policy Uniform(double prune, int bits) {
  v1::Policy p;
  p.mutable_uniform()->set_prune(prune);
  p.mutable_uniform()->set_bits(bits);
  return p;
}

TEST(SimulatedRunnerTest, MetricsFollowThePolicyDeterministically) {
  v1::ModelDescription model = SimulatedDescription(1000);
  EXPECT_EQ(model.layers_size(), 4);
  EXPECT_GT(model.bytes(), 4 * model.params());  // at least the fp32 weights

  auto none = SimulatedEvaluation(model, Uniform(0, 32));
  auto int8 = SimulatedEvaluation(model, Uniform(0, 8));
  auto pruned = SimulatedEvaluation(model, Uniform(0.5, 8));
  ASSERT_TRUE(none.ok() && int8.ok() && pruned.ok());
  EXPECT_NEAR(none->size_ratio(), 1.0, 1e-9);
  EXPECT_NEAR(none->retention(), 1.0, 1e-9);
  EXPECT_LT(int8->size_ratio(), 0.3);
  EXPECT_LT(pruned->size_ratio(), int8->size_ratio());
  EXPECT_LT(pruned->retention(), int8->retention());
  EXPECT_LT(int8->retention(), 1.0);
  EXPECT_GT(pruned->speedup(), 1.0);
  EXPECT_EQ(SimulatedEvaluation(model, Uniform(0.5, 8))->SerializeAsString(), pruned->SerializeAsString());
}

TEST(SimulatedRunnerTest, BadPolicyNamesTheLayer) {
  v1::Policy p;
  auto* a = p.add_layers();
  a->set_name("conv1");
  a->set_prune(2.0);
  auto e = SimulatedEvaluation(SimulatedDescription(0), p);
  EXPECT_FALSE(e.ok());
}

TEST(SimulatedRunnerTest, FailRateOneAlwaysFailsAndNeverThrows) {
  SimulatedRunner runner({0.0, 1.0}, ::testing::TempDir() + "/simulated");
  v1::Task task;
  task.set_task_id("t1");
  task.set_kind(v1::Task::EVALUATE);
  *task.mutable_policy() = Uniform(0.2, 8);
  v1::TaskResult r = runner.Run(task, nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("simulated pass failure"), std::string::npos) << r.error();
  EXPECT_EQ(r.task_id(), "t1");
  SimulatedRunner healthy({0.0, 0.0}, ::testing::TempDir() + "/simulated");
  v1::TaskResult ok = healthy.Run(task, nullptr);
  EXPECT_TRUE(ok.ok()) << ok.error();
  EXPECT_GT(ok.evaluation().size_ratio(), 0);
}

TEST(SimulatedRunnerTest, ARecalledTaskStopsWithoutWaitingItsSeconds) {
  SimulatedRunner runner({600.0, 0.0}, ::testing::TempDir() + "/simulated");
  v1::Task task;
  task.set_task_id("t2");
  task.set_kind(v1::Task::EVALUATE);
  *task.mutable_policy() = Uniform(0.2, 8);
  RecallFlag recalled(false);
  std::thread recall([&] { recalled.store(true); });
  const absl::Time start = absl::Now();
  v1::TaskResult r = runner.Run(task, nullptr, &recalled);
  recall.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));  // not the task's 600 s
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("recalled"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace shrink::worker
