// Config layer: schema defaults, override typing and grammar, every error kind with its exact
// file:line:col, suggestions for typos, cross-field checks, the resolved TOML dump.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/io/config.h"

using namespace moelab;
using namespace moelab::io;
namespace fs = std::filesystem;

namespace {

// Removes this program's temporary directory when all tests are done.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::temp_directory_path() / ("moelab_test_config_" + std::to_string(::getpid()))); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

Schema make_schema() {
  Schema s("classify", "test task");
  s.add_int("seed", 0, "random seed").at_least(0);
  s.add_string("run.name", "default", "run name");
  s.add_section("model", "the network");
  s.add_int("model.d_model", 64, "width").at_least(1);
  s.add_section("model.moe", "Mixture-of-Experts layers");
  s.add_int("model.moe.num_experts", 8, "experts per layer").at_least(1);
  s.add_int("model.moe.top_k", 2, "experts per token").at_least(1);
  s.add_choice("model.moe.router", "topk", {"topk", "expert_choice", "hash"}, "routing algorithm");
  s.add_int_list("model.moe.layers", {1, 3}, "blocks with MoE").at_least(0);
  s.add_float("train.lr", 3e-4, "learning rate").greater_than(0).at_most(1);
  s.add_float_list("train.betas", {0.9, 0.999}, "AdamW betas").at_least(0).less_than(1);
  s.add_bool("train.amp", false, "mixed precision");
  s.add_string("train.resume", "", "checkpoint to start from").no_default();
  s.add_string_list("data.splits", {"train", "val"}, "splits to load");
  s.add_open_section("notes", "free-form notes");
  s.add_check([](const Config& c, ConfigReporter& r) {
    const int64_t k = c.get_int("model.moe.top_k"), e = c.get_int("model.moe.num_experts");
    if (k > e)
      r.error("model.moe.top_k", "model.moe.top_k = " + std::to_string(k) + " exceeds model.moe.num_experts = " +
                                     std::to_string(e));
  });
  return s;
}

fs::path write_temp(const std::string& name, const std::string& text) {
  fs::path dir = fs::temp_directory_path() / ("moelab_test_config_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p) << text;
  return p;
}

// The errors a resolve throws (empty when it succeeds).
std::vector<std::string> resolve_errors(Config c, const std::vector<std::string>& overrides, const Schema& s = make_schema()) {
  try {
    c.resolve(s, overrides);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

TEST(Config, EmptyConfigGetsAllDefaults) {
  Config c;
  c.resolve(make_schema());
  EXPECT_EQ(c.get_int("seed"), 0);
  EXPECT_EQ(c.get_int("model.moe.top_k"), 2);
  EXPECT_DOUBLE_EQ(c.get_float("train.lr"), 3e-4);
  EXPECT_FALSE(c.get_bool("train.amp"));
  EXPECT_EQ(c.get_string("model.moe.router"), "topk");
  EXPECT_EQ(c.get_int_list("model.moe.layers"), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(c.get_float_list("train.betas"), (std::vector<double>{0.9, 0.999}));
  EXPECT_EQ(c.get_string_list("data.splits"), (std::vector<std::string>{"train", "val"}));
  EXPECT_FALSE(c.has("train.resume"));  // declared without a default
  EXPECT_EQ(c.origin("seed").str(), "<default>");
  EXPECT_EQ(c.section("model.moe").get_int("num_experts"), 8);
}

TEST(Config, FileValuesAndIntWhereFloatExpected) {
  Config c = Config::from_string("seed = 7\n[train]\nlr = 1\nbetas = [0, 0.5]\n[model.moe]\ntop_k = 1\n", "a.toml");
  c.resolve(make_schema());
  EXPECT_EQ(c.get_int("seed"), 7);
  EXPECT_DOUBLE_EQ(c.get_float("train.lr"), 1.0);
  EXPECT_EQ(c.value_text("train.lr"), "1.0");  // stored as a float
  EXPECT_EQ(c.get_float_list("train.betas"), (std::vector<double>{0.0, 0.5}));
  EXPECT_EQ(c.get_int("model.moe.top_k"), 1);
  EXPECT_EQ(c.origin("model.moe.top_k").str(), "a.toml:6:9");
}

TEST(Config, OverridesAreTypedLikeTheKey) {
  Config c = Config::from_string("[model]\nd_model = 32\n", "a.toml");
  c.resolve(make_schema(), {"train.lr=1e-3", "model.d_model=128", "model.moe.router=expert_choice", "run.name=123",
                            "model.moe.layers=[0, 2, 4]", "train.amp=true", "train.betas=[0, 1e-1]",
                            "data.splits=[\"a\"]", "seed=5", "run.name=\"quoted\""});
  EXPECT_DOUBLE_EQ(c.get_float("train.lr"), 1e-3);
  EXPECT_EQ(c.get_int("model.d_model"), 128);
  EXPECT_EQ(c.get_string("model.moe.router"), "expert_choice");  // bare word taken as a string
  EXPECT_EQ(c.get_string("run.name"), "quoted");                  // the later override wins
  EXPECT_EQ(c.get_int_list("model.moe.layers"), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_TRUE(c.get_bool("train.amp"));
  EXPECT_EQ(c.get_float_list("train.betas"), (std::vector<double>{0.0, 0.1}));
  EXPECT_EQ(c.get_string_list("data.splits"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(c.origin("model.d_model").str(), "<override 2: model.d_model=128>");
  EXPECT_EQ(c.overrides().size(), 10u);

  Config d;
  d.resolve(make_schema(), {"run.name=123", "train.lr=1"});
  EXPECT_EQ(d.get_string("run.name"), "123");  // a number given for a string key stays text
  EXPECT_EQ(d.value_text("train.lr"), "1.0");  // an integer given for a float key becomes a float
}

TEST(Config, OverrideErrors) {
  auto errors = resolve_errors(Config::from_string("[model.moe]\ntop_k = 1\n", "a.toml"),
                               {"model.d_model=abc", "model.moe.topk=3", "train.resume=x", "+seed=3", "oops",
                                "model.moe=3", "train.lr=[1]", "bad key=1"});
  EXPECT_TRUE(contains(errors, "<override 1: model.d_model=abc>: model.d_model: expected an integer, got string \"abc\""))
      << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 2: model.moe.topk=3>: unknown key 'model.moe.topk'; did you mean 'model.moe.top_k'?"))
      << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 3: train.resume=x>: 'train.resume' is not in the config or its defaults; "
                               "use '+train.resume=x' to add it"))
      << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 4: +seed=3>: 'seed' already exists; override it with 'seed=3'")) << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 5: oops>: expected key=value (or +key=value to add a key)")) << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 6: model.moe=3>: 'model.moe' is a table; set its keys one by one "
                               "('model.moe.<name>=...')"))
      << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 7: train.lr=[1]>: train.lr: expected a number, got array [1]")) << joined(errors);
  EXPECT_TRUE(contains(errors, "<override 8: bad key=1>: 'bad key' is not a valid key (dotted bare keys: letters, "
                               "digits, _ and -)"))
      << joined(errors);
  EXPECT_EQ(errors.size(), 8u) << joined(errors);
}

TEST(Config, PlusAddsOptionalAndOpenKeys) {
  Config c = Config::from_string("[notes]\nauthor = \"x\"\nruns = 3\n", "a.toml");
  c.resolve(make_schema(), {"+train.resume=ckpt/step_100", "+notes.tag=baseline", "notes.runs=4", "++seed=9",
                            "++notes.extra=1.5"});
  EXPECT_EQ(c.get_string("train.resume"), "ckpt/step_100");
  EXPECT_EQ(c.get_string("notes.tag"), "baseline");
  EXPECT_EQ(c.get_int("notes.runs"), 4);
  EXPECT_EQ(c.get_int("seed"), 9);
  EXPECT_DOUBLE_EQ(c.get_float("notes.extra"), 1.5);
  // An open-section key already in the file keeps its type.
  auto errors = resolve_errors(Config::from_string("[notes]\nruns = 3\n", "a.toml"), {"notes.runs=many"});
  EXPECT_TRUE(contains(errors, "<override 1: notes.runs=many>: notes.runs: expected integer like the current value, "
                               "got string \"many\""))
      << joined(errors);
}

TEST(Config, EveryFileErrorWithPosition) {
  const fs::path path = write_temp("bad.toml",
                                   "seed = 1\n"                // 1
                                   "[model]\n"                 // 2
                                   "d_model = \"wide\"\n"      // 3
                                   "[model.moe]\n"             // 4
                                   "num_experts = 8\n"         // 5
                                   "top_k = 9\n"               // 6
                                   "router = \"topkk\"\n"      // 7
                                   "layers = [1, -2]\n"        // 8
                                   "topk = 3\n"                // 9
                                   "[train]\n"                 // 10
                                   "lr = 0.0\n"                // 11
                                   "[modle]\n"                 // 12
                                   "x = 1\n");                 // 13
  const std::string p = path.string();
  auto errors = resolve_errors(Config::from_file(p), {});
  EXPECT_TRUE(contains(errors, p + ":3:11: model.d_model: expected an integer, got string \"wide\"")) << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":6:9: model.moe.top_k = 9 exceeds model.moe.num_experts = 8")) << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":7:10: model.moe.router = \"topkk\" is not one of: topk, expert_choice, hash; "
                                   "did you mean 'topk'?"))
      << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":8:14: model.moe.layers[1] = -2 must be >= 0")) << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":9:1: unknown key 'model.moe.topk'; did you mean 'model.moe.top_k'?")) << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":11:6: train.lr = 0.0 must be > 0")) << joined(errors);
  EXPECT_TRUE(contains(errors, p + ":12:2: unknown table 'modle'; did you mean 'model'?")) << joined(errors);
  EXPECT_EQ(errors.size(), 7u) << joined(errors);
}

TEST(Config, ErrorsAreOnePerLineInWhat) {
  try {
    Config::from_string("a = 1\nb = 2\n", "x.toml").resolve(make_schema());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "x.toml:1:1: unknown key 'a' (see the keys of 'classify' with --help)\n"
                                     "x.toml:2:1: unknown key 'b' (see the keys of 'classify' with --help)");
    EXPECT_NE(dynamic_cast<const Error*>(&e), nullptr);
  }
}

TEST(Config, RightNameInWrongTableIsSuggested) {
  auto errors = resolve_errors(Config::from_string("[moe]\ntop_k = 1\n", "x.toml"), {});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "x.toml:1:2: unknown table 'moe'; did you mean 'model.moe'?");
  errors = resolve_errors(Config::from_string("moe.num_experts = 4\n", "x.toml"), {});
  EXPECT_EQ(joined(errors), "x.toml:1:1: unknown table 'moe'; did you mean 'model.moe'?\n");
}

TEST(Config, WrongShapesOfValues) {
  auto errors = resolve_errors(Config::from_string("model = 3\n[train]\namp = 1\nbetas = [0.5, \"x\"]\n", "x.toml"), {});
  EXPECT_TRUE(contains(errors, "x.toml:1:9: 'model' must be a table of keys, got integer 3")) << joined(errors);
  EXPECT_TRUE(contains(errors, "x.toml:3:7: train.amp: expected true or false, got integer 1")) << joined(errors);
  EXPECT_TRUE(contains(errors, "x.toml:4:9: train.betas: expected a list of numbers, but element 1 is string \"x\""))
      << joined(errors);
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  try {
    Config::from_string("[model]\nd_model = = 3\n", "s.toml");
    FAIL();
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].rfind("s.toml:2:", 0), 0u) << e.what();
  }
  try {
    Config::from_file("/nonexistent/c.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/c.toml: cannot read"), std::string::npos);
  }
}

TEST(Config, RequiredKeys) {
  Schema s = make_schema();
  s.add_string("data.path", "", "where the data lives").require();
  auto errors = resolve_errors(Config::from_string("", "r.toml"), {}, s);
  EXPECT_EQ(joined(errors), "r.toml: missing required key 'data.path' (where the data lives)\n");
  Config ok;
  ok.resolve(s, {"+data.path=/d"});
  EXPECT_EQ(ok.get_string("data.path"), "/d");
}

TEST(Config, ChecksSkipWhenTheyReadInvalidKeys) {
  // top_k is wrongly typed: only the type error is reported, not a confusing cross-field error.
  auto errors = resolve_errors(Config::from_string("[model.moe]\ntop_k = \"many\"\nnum_experts = 0\n", "x.toml"), {});
  EXPECT_EQ(joined(errors), "x.toml:3:15: model.moe.num_experts = 0 must be >= 1\n"
                            "x.toml:2:9: model.moe.top_k: expected an integer, got string \"many\"\n");
}

TEST(Config, CheckOriginFollowsOverrides) {
  auto errors = resolve_errors(Config(), {"model.moe.top_k=12"});
  EXPECT_EQ(joined(errors), "<override 1: model.moe.top_k=12>: model.moe.top_k = 12 exceeds model.moe.num_experts = 8\n");
}

TEST(Config, DumpRoundTripsAndKeepsSchemaOrder) {
  Config c = Config::from_string("[notes]\nwho = \"a \\\"b\\\"\"\n[train]\nlr = 0.0003\n", "a.toml");
  c.resolve(make_schema(), {"model.moe.layers=[2]", "train.betas=[0.1, 0.2]"});
  const std::string text = c.to_toml();
  EXPECT_EQ(text,
            "seed = 0\n"
            "\n[run]\nname = \"default\"\n"
            "\n[model]\nd_model = 64\n"
            "\n[model.moe]\nnum_experts = 8\ntop_k = 2\nrouter = \"topk\"\nlayers = [2]\n"
            "\n[train]\nlr = 0.0003\nbetas = [0.1, 0.2]\namp = false\n"
            "\n[data]\nsplits = [\"train\", \"val\"]\n"
            "\n[notes]\nwho = \"a \\\"b\\\"\"\n");
  Config back = Config::from_string(text, "config.toml");
  back.resolve(make_schema());
  EXPECT_TRUE(config_differences(c, back).empty());
  EXPECT_EQ(back.to_toml(), text);
  back.resolve(make_schema(), {"train.lr=0.001"});
  EXPECT_EQ(config_differences(c, back), (std::vector<std::string>{"train.lr"}));

  const std::string commented = c.to_toml(true);
  EXPECT_NE(commented.find("# Mixture-of-Experts layers\n[model.moe]\n"), std::string::npos) << commented;
  EXPECT_NE(commented.find("# experts per token (>= 1)\ntop_k = 2  # default\n"), std::string::npos) << commented;
  EXPECT_NE(commented.find("layers = [2]  # override 1\n"), std::string::npos) << commented;
  EXPECT_NE(commented.find("# learning rate (> 0, <= 1)\nlr = 0.0003\n"), std::string::npos) << commented;
}

TEST(Config, FilesMergeKeyByKey) {
  const fs::path base = write_temp("base.toml", "seed = 1\n[model.moe]\ntop_k = 1\nnum_experts = 4\n");
  const fs::path exp = write_temp("exp.toml", "[model.moe]\nnum_experts = 16\n");
  Config c = Config::from_files({base.string(), exp.string()});
  c.resolve(make_schema());
  EXPECT_EQ(c.get_int("seed"), 1);
  EXPECT_EQ(c.get_int("model.moe.top_k"), 1);
  EXPECT_EQ(c.get_int("model.moe.num_experts"), 16);
  EXPECT_EQ(c.origin("model.moe.num_experts").str(), exp.string() + ":2:15");
  EXPECT_EQ(c.origin("model.moe.top_k").str(), base.string() + ":3:9");
}

TEST(Config, GetterMisuseIsAProgrammingError) {
  Config c = load_config(make_schema(), "", {});
  try {
    c.get_int("model.moe.topk");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.moe.topk' is not declared in schema 'classify'; did you mean "
                                         "'model.moe.top_k'?"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(c.get_float("model.moe.top_k"), Error);
  EXPECT_THROW(c.get_string("train.resume"), Error);  // not set
}

TEST(Schema, DeclarationMistakesAreCaught) {
  Schema s;
  s.add_int("a.b", 1, "x");
  EXPECT_THROW(s.add_int("a.b", 1, "again"), Error);
  EXPECT_THROW(s.add_int("a", 1, "a is a table"), Error);
  EXPECT_THROW(s.add_int("a.b.c", 1, "a.b is a key"), Error);
  EXPECT_THROW(s.add_int("k", 0, "x").at_least(1), Error);  // default out of range
  EXPECT_THROW(s.add_choice("r", "z", {"x", "y"}, "x"), Error);
  EXPECT_THROW(s.add_int("bad key", 1, "x"), Error);
}

TEST(Schema, HelpAndMarkdownListEveryKey) {
  const Schema s = make_schema();
  const std::string help = s.render_help();
  EXPECT_NE(help.find("classify: test task"), std::string::npos);
  EXPECT_NE(help.find("[model.moe] Mixture-of-Experts layers\n"), std::string::npos) << help;
  EXPECT_NE(help.find("model.moe.top_k        int           2                 experts per token (>= 1)\n"), std::string::npos)
      << help;
  EXPECT_NE(help.find("routing algorithm (one of: topk, expert_choice, hash)"), std::string::npos);
  EXPECT_NE(help.find("(unset)"), std::string::npos);
  EXPECT_NE(help.find("notes.*"), std::string::npos);
  const std::string md = s.render_markdown();
  EXPECT_EQ(md.rfind("| key | type | default | description |\n|---|---|---|---|\n", 0), 0u);
  EXPECT_NE(md.find("| `train.lr` | float | `0.0003` | learning rate (> 0, <= 1) |\n"), std::string::npos) << md;
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 2 + 12 + 1);  // header, separator, 12 keys, the open section
}
