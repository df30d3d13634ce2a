// `moelab bench moe|ops|train --device --dtype`: the cpu run reports its device and dispatch share; cuda
// runs on a device or, without one, fails with exit 2 saying why; every row names the machine, the dtype
// and its peak memory; an unknown or mismatched dtype is an error.
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

namespace {

// Every bench row names where it ran: device, device name, ISA (cpu), dtype, and a positive peak memory.
void expect_machine_fields(const json& j, const std::string& dtype) {
  EXPECT_EQ(j["device"], "cpu") << j.dump();
  EXPECT_EQ(j["dtype"], dtype) << j.dump();
  EXPECT_TRUE(j["device_name"].is_string()) << j.dump();
  ASSERT_TRUE(j["isa"].is_string()) << j.dump();
  EXPECT_FALSE(j["isa"].get<std::string>().empty());
  EXPECT_EQ(j["peak_memory_kind"], "rss") << j.dump();
  EXPECT_GT(j["peak_memory_bytes"].get<double>(), 1e6) << j.dump();  // a process's RSS is megabytes at least
}

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> rows;
  for (size_t p = out.find("{\"bench\""); p != std::string::npos; p = out.find("{\"bench\"", p + 1))
    rows.push_back(json::parse(out.substr(p, out.find('\n', p) - p)));
  return rows;
}

}  // namespace

TEST(BenchDevice, MoeRunsInFloat64AndNamesTheMachine) {
  std::vector<std::string> args = kSmallCase;
  args.insert(args.end(), {"--dtype", "f64"});
  CommandResult r = run_moelab(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = last_json_line(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  expect_machine_fields(j, "f64");
  EXPECT_GT(j["gemm_gflops"].get<double>(), 0.0);
}

TEST(BenchDevice, UnknownDtypeIsAnError) {
  std::vector<std::string> args = kSmallCase;
  args.insert(args.end(), {"--dtype", "f16"});
  CommandResult r = run_moelab(args);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--dtype 'f16' is not one of"), std::string::npos) << r.output;
}

TEST(BenchDevice, OpsRowsCarryDeviceDtypeAndPeakMemory) {
  for (const char* dtype : {"f32", "f64"}) {
    CommandResult r = run_moelab({"bench", "ops", "--sizes", "64", "--tokens", "16,32", "--dim", "32", "--heads", "2",
                                  "--attention-tokens", "16", "--attention-batches", "1", "--repeats", "2",
                                  "--dtype", dtype});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::vector<json> rows = json_lines(r.output);
    ASSERT_EQ(rows.size(), 1u + 2u + 2u) << r.output;  // one matmul size, two block sizes, attention none + causal
    for (const json& j : rows) expect_machine_fields(j, dtype);
    EXPECT_EQ(rows[0]["raw_gemm"], std::string(dtype) == "f64" ? "cblas_dgemm" : "cblas_sgemm");
    EXPECT_EQ(rows[1]["tokens"], 16);
    EXPECT_EQ(rows[2]["tokens"], 32);
  }
}

TEST(BenchDevice, TrainNamesTheMachineAndChecksTheDtype) {
  CommandResult r = run_moelab({"bench", "train", MOELAB_SOURCE_DIR "/configs/toy_mixture.toml", "--steps", "2",
                                "--warmup", "0", "--device", "cpu", "--dtype", "f32"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = last_json_line(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  expect_machine_fields(j, "f32");
  CommandResult bad = run_moelab({"bench", "train", MOELAB_SOURCE_DIR "/configs/toy_mixture.toml", "--steps", "1",
                                  "--warmup", "0", "--dtype", "f64"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("trains with f32 parameters"), std::string::npos) << bad.output;
}
