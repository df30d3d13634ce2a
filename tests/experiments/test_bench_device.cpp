// `moelab bench moe --device`: the cpu run reports its device and dispatch share; cuda runs on a device
// (dispatch share not reported there) or, without one, fails with exit 2 saying why.
#include <gtest/gtest.h>

#include "core/backend/backend.h"
#include "core/backend/device_select.h"
#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

const std::vector<std::string> kSmallCase = {"bench", "moe", "--tokens", "64", "--d-model", "16", "--d-ff", "32",
                                             "--experts", "4", "--top-k", "1", "--repeats", "1", "--warmup", "0"};

json last_json_line(const std::string& out) {
  size_t start = out.rfind("{\"bench\"");
  if (start == std::string::npos) return json();
  return json::parse(out.substr(start, out.find('\n', start) - start));
}

}  // namespace

TEST(BenchDevice, CpuReportsItsDevice) {
  std::vector<std::string> args = kSmallCase;
  args.insert(args.end(), {"--device", "cpu"});
  CommandResult r = run_moelab(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = last_json_line(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_TRUE(j["dispatch_share"].is_number());
  EXPECT_GT(j["gemm_gflops"].get<double>(), 0.0);
  EXPECT_EQ(j["tokens"], 64);
}

TEST(BenchDevice, CudaRunsOnADeviceOrSaysWhyNot) {
  std::vector<std::string> args = kSmallCase;
  args.insert(args.end(), {"--device", "cuda"});
  CommandResult r = run_moelab(args);
  if (moelab::cuda_device_count() == 0) {
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("moelab bench moe: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(moelab::cuda_built() ? "no CUDA device" : "built without"), std::string::npos) << r.output;
    return;
  }
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = last_json_line(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["device"], "cuda:0");
  EXPECT_TRUE(j["dispatch_share"].is_null());
  EXPECT_GT(j["gemm_gflops"].get<double>(), 0.0);
}
