// Run configs as the program resolves them (common keys + the toy_mixture task's schema): override
// typing, `+key=value`, and every kind of config error with its file:line:col (or override) and the
// nearest valid key.
#include <gtest/gtest.h>

#include "experiments/lib/micro_batches.h"
#include "experiments/lib/run_config.h"
#include "moelab_cli_util.h"

using namespace moelab::experiments;
using namespace moelab::testing;

namespace {

fs::path write_config(const std::string& name, const std::string& text) {
  fs::path p = fresh_dir("run_config", name) / (name + ".toml");
  write_text(p, text);
  return p;
}

// The ConfigError message of loading `path` with `overrides` ("" when it loads).
std::string config_error(const fs::path& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_run_config(path.string(), overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, OverridesAreTypedLikeTheirKeys) {
  fs::path p = write_config("typed", tiny_config());
  Config c = load_run_config(p.string(), {"model.moe.top_k=2", "optim.lr=1", "model.moe.router=soft_moe",
                                          "model.moe.drop_policy=\"probability\"", "train.steps=7", "model.moe.renormalize=true"});
  EXPECT_EQ(c.get_int("model.moe.top_k"), 2);
  EXPECT_DOUBLE_EQ(c.get_float("optim.lr"), 1.0);  // an integer where a float is expected
  EXPECT_EQ(c.value_text("optim.lr"), "1.0");
  EXPECT_EQ(c.get_string("model.moe.router"), "soft_moe");  // a bare word is a string
  EXPECT_EQ(c.get_string("model.moe.drop_policy"), "probability");
  EXPECT_EQ(c.get_int("train.steps"), 7);
  EXPECT_TRUE(c.get_bool("model.moe.renormalize"));
  // Keys the file does not mention come from the schema defaults; the file's own values stay.
  EXPECT_EQ(c.get_int("model.moe.num_experts"), 4);
  EXPECT_EQ(c.get_int("train.grad_accum"), 1);
  EXPECT_EQ(c.origin("model.moe.top_k").str(), "<override 1: model.moe.top_k=2>");
  EXPECT_EQ(c.origin("model.moe.num_experts").str(), p.string() + ":16:15");
}

TEST(RunConfig, PlusAddsKeysToOpenTablesOnly) {
  fs::path p = write_config("plus", tiny_config());
  Config c = load_run_config(p.string(), {"+notes.purpose=baseline", "+notes.tries=3"});
  EXPECT_EQ(c.value_text("notes.purpose"), "\"baseline\"");
  EXPECT_EQ(c.value_text("notes.tries"), "3");
  // Setting a key that does not exist yet needs the +.
  std::string e = config_error(p, {"notes.purpose=x"});
  EXPECT_NE(e.find("notes.purpose"), std::string::npos) << e;
  EXPECT_NE(e.find("+notes.purpose"), std::string::npos) << e;
}

TEST(RunConfig, NameDefaultsToTheFileStem) {
  fs::path p = write_config("my_experiment", tiny_config());
  EXPECT_EQ(load_run_config(p.string(), {}).get_string("name"), "my_experiment");
  EXPECT_EQ(load_run_config(p.string(), {"name=other"}).get_string("name"), "other");
}

TEST(RunConfig, ResolvedConfigReloadsUnchanged) {
  fs::path p = write_config("roundtrip", tiny_config());
  Config c = load_run_config(p.string(), {"model.moe.router=expert_choice", "optim.lr=0.0005", "+notes.x=1"});
  fs::path saved = p.parent_path() / "config.toml";
  write_text(saved, c.to_toml());
  Config back = load_run_config(saved.string(), {});
  EXPECT_TRUE(moelab::io::config_differences(c, back).empty());
  EXPECT_EQ(back.get_string("model.moe.router"), "expert_choice");
}

TEST(RunConfigErrors, UnknownKeyInFileNamesLineColumnAndNearestKey) {
  // [model.moe] is line 15 of tiny_config; the typo is on line 16.
  std::string text = tiny_config();
  text.replace(text.find("num_experts = 4"), 15, "num_expert = 4");
  fs::path p = write_config("typo", text);
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":16:1: unknown key 'model.moe.num_expert'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'model.moe.num_experts'"), std::string::npos) << e;
}

TEST(RunConfigErrors, WrongTypeInFile) {
  std::string text = tiny_config();
  text.replace(text.find("steps = 24"), 10, "steps = \"many\"");
  fs::path p = write_config("type", text);
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":20:9: train.steps: expected an integer"), std::string::npos) << e;
}

TEST(RunConfigErrors, OutOfRangeValues) {
  std::string text = tiny_config();
  text.replace(text.find("lr = 0.003"), 10, "lr = -1.0");
  fs::path p = write_config("range", text);
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":27:6: optim.lr = -1.0 must be > 0"), std::string::npos) << e;
  e = config_error(write_config("range_override", tiny_config()), {"optim.min_lr_ratio=1.5"});
  EXPECT_NE(e.find("<override 1: optim.min_lr_ratio=1.5>"), std::string::npos) << e;
  EXPECT_NE(e.find("<= 1"), std::string::npos) << e;
}

TEST(RunConfigErrors, TopKAboveNumExpertsIsReportedAtTopK) {
  std::string text = tiny_config();
  text.replace(text.find("top_k = 1"), 9, "top_k = 9");
  fs::path p = write_config("topk", text);
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":17:9: model.moe.top_k = 9 exceeds model.moe.num_experts = 4"), std::string::npos) << e;
  e = config_error(write_config("topk_override", tiny_config()), {"model.moe.top_k=5"});
  EXPECT_NE(e.find("<override 1: model.moe.top_k=5>: model.moe.top_k = 5 exceeds model.moe.num_experts = 4"),
            std::string::npos)
      << e;
}

TEST(RunConfigErrors, ChoicesListTheValidNames) {
  std::string e = config_error(write_config("choice", tiny_config()), {"model.moe.router=topk"});
  EXPECT_NE(e.find("<override 1: model.moe.router=topk>"), std::string::npos) << e;
  EXPECT_NE(e.find("top_k"), std::string::npos) << e;
  EXPECT_NE(e.find("expert_choice"), std::string::npos) << e;
}

TEST(RunConfigErrors, OverrideErrorsNameTheOverrideAndSuggest) {
  fs::path p = write_config("override", tiny_config());
  std::string e = config_error(p, {"model.moe.topk=2"});
  EXPECT_NE(e.find("<override 1: model.moe.topk=2>: unknown key 'model.moe.topk'; did you mean 'model.moe.top_k'?"),
            std::string::npos)
      << e;
  e = config_error(p, {"train.steps=abc"});
  EXPECT_NE(e.find("<override 1: train.steps=abc>: train.steps: expected an integer"), std::string::npos) << e;
  e = config_error(p, {"+train.steps=3"});
  EXPECT_NE(e.find("train.steps"), std::string::npos) << e;
  EXPECT_NE(e.find("<override 1: +train.steps=3>"), std::string::npos) << e;
}

TEST(RunConfigErrors, SyntaxErrorsNameLineAndColumn) {
  fs::path p = write_config("syntax", "task = \"toy_mixture\"\n[train]\nsteps = = 3\n");
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":3:"), std::string::npos) << e;
}

TEST(RunConfigErrors, UnknownTaskSuggestsARegisteredOne) {
  fs::path p = write_config("task", "task = \"toy_mixtur\"\n");
  std::string e = config_error(p);
  EXPECT_NE(e.find(p.string() + ":1:8"), std::string::npos) << e;
  EXPECT_NE(e.find("toy_mixture"), std::string::npos) << e;
  e = config_error(write_config("notask", "seed = 1\n"));
  EXPECT_NE(e.find("task"), std::string::npos) << e;
}

// One key spelling for MoE placement in every task; the old toy_mixture spelling is unknown.
TEST(RunConfig, MoEPlacementUsesTheSharedKeys) {
  fs::path p = write_config("placement", tiny_config());
  Config c = load_run_config(p.string(), {"model.moe.every=2"});
  EXPECT_EQ(c.get_int("model.moe.every"), 2);
  EXPECT_EQ(config_error(p, {"model.moe.layers=[0, 1]"}), "");
  std::string e = config_error(p, {"model.moe.layers=[0, 2]"});
  EXPECT_NE(e.find("<override 1: model.moe.layers=[0, 2]>"), std::string::npos) << e;  // 2 layers only
  e = config_error(p, {"model.moe_every=2"});
  EXPECT_NE(e.find("unknown key 'model.moe_every'"), std::string::npos) << e;
}

// The switch loss over all ranks' counts (docs/distributed.md) is a valid scope, as are the others.
TEST(RunConfigErrors, EverySwitchLossScopeIsAccepted) {
  for (const char* scope : {"micro_batch", "sequence", "global"})
    EXPECT_EQ(config_error(write_config(std::string("scope_") + scope, tiny_config()),
                           {std::string("model.moe.switch_loss_scope=") + scope}), "") << scope;
  std::string e = config_error(write_config("scope_bad", tiny_config()), {"model.moe.switch_loss_scope=world"});
  EXPECT_NE(e.find("<override 1: model.moe.switch_loss_scope=world>"), std::string::npos) << e;
}

TEST(RunConfig, ResumeMayChangeOnlyDurationsAndNotes) {
  EXPECT_TRUE(resume_may_change("train.steps"));
  EXPECT_TRUE(resume_may_change("train.eval_every"));
  EXPECT_TRUE(resume_may_change("train.examples"));
  EXPECT_FALSE(resume_may_change("optim.param_groups"));
  EXPECT_TRUE(resume_may_change("notes.anything"));
  EXPECT_FALSE(resume_may_change("model.d_model"));
  EXPECT_FALSE(resume_may_change("optim.lr"));
  EXPECT_FALSE(resume_may_change("seed"));
}

}  // namespace

TEST(RunConfigErrors, WorkersRunOnTheCpuOnly) {
  const fs::path cfg = fs::path(MOELAB_SOURCE_DIR) / "configs" / "vit_fmnist_moe.toml";
  Config c = load_run_config(cfg.string(), {});
  ASSERT_EQ(c.get_int("train.workers"), 2);
  EXPECT_NO_THROW(check_workers_supported(c, moelab::Device::cpu()));
  try {
    check_workers_supported(c, moelab::Device::cuda(0));
    FAIL() << "workers on a CUDA device were accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(cfg.string() + ":"), std::string::npos) << msg;  // file:line:col of train.workers
    EXPECT_NE(msg.find("concurrent micro-batches run on the CPU only"), std::string::npos) << msg;
  }
}
