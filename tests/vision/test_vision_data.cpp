// Fashion-MNIST loading on small generated IDX files (and every malformed-file error), the
// train/validation split, the deterministic shuffled loader and the augmentation.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "core/util/check.h"
#include "vision/data/fashion_mnist.h"
#include "vision/data/idx.h"
#include "vision/data/loader.h"

namespace fs = std::filesystem;
using namespace moelab;
using namespace moelab::vision;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moelab_test_vision_data_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_gz_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::vector<uint8_t> idx_bytes(std::vector<uint8_t> magic, const std::vector<uint32_t>& dims, size_t payload) {
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) magic.push_back(static_cast<uint8_t>(d >> s));
  for (size_t i = 0; i < payload; ++i) magic.push_back(static_cast<uint8_t>(i * 7));
  return magic;
}

// Expects read_idx_u8 to throw moelab::Error whose message contains every fragment.
void expect_idx_error(const fs::path& path, int rank, const std::vector<std::string>& fragments) {
  try {
    read_idx_u8(path.string(), rank);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

// A fake Fashion-MNIST folder with `n` images of 4x3 pixels; pixel value = 10*i + position.
fs::path write_fake_fmnist(const std::string& name, int n) {
  fs::path d = fresh_dir(name);
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < 12; ++p) pixels.push_back(static_cast<uint8_t>(10 * i + p));
    labels.push_back(static_cast<uint8_t>(i % 10));
  }
  for (std::string part : {"train", "t10k"}) {
    write_idx_u8((d / (part + "-images-idx3-ubyte.gz")).string(), {n, 4, 3}, pixels);
    write_idx_u8((d / (part + "-labels-idx1-ubyte.gz")).string(), {n}, labels);
  }
  return d;
}

}  // namespace

TEST(Idx, RoundTripsGzipAndPlain) {
  fs::path d = fresh_dir("roundtrip");
  std::vector<uint8_t> data(2 * 3 * 5);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 11);
  for (bool gzip : {true, false}) {
    fs::path p = d / (gzip ? "a.gz" : "a.idx");
    write_idx_u8(p.string(), {2, 3, 5}, data, gzip);
    IdxArray a = read_idx_u8(p.string(), 3);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 5}));
    EXPECT_EQ(a.data, data);
  }
  // The plain file is exactly header + payload: 4 + 3*4 + 30 bytes.
  EXPECT_EQ(fs::file_size(d / "a.idx"), 46u);
  fs::remove_all(d);
}

TEST(Idx, MalformedFilesAreErrorsNamingThePath) {
  fs::path d = fresh_dir("malformed");
  auto p = [&](const char* n) { return d / n; };
  write_gz_bytes(p("magic.gz"), idx_bytes({1, 0, 8, 1}, {4}, 4));
  expect_idx_error(p("magic.gz"), 1, {"magic.gz", "bad magic"});
  write_gz_bytes(p("type.gz"), idx_bytes({0, 0, 0x0d, 1}, {4}, 16));
  expect_idx_error(p("type.gz"), 1, {"type.gz", "not unsigned byte"});
  write_gz_bytes(p("rank.gz"), idx_bytes({0, 0, 8, 1}, {4}, 4));
  expect_idx_error(p("rank.gz"), 3, {"rank.gz", "rank 1, expected 3"});
  write_gz_bytes(p("header.gz"), {0, 0, 8, 3, 0, 0});
  expect_idx_error(p("header.gz"), 3, {"header.gz", "truncated header"});
  write_gz_bytes(p("short.gz"), {0, 0});
  expect_idx_error(p("short.gz"), 1, {"short.gz", "truncated header"});
  write_gz_bytes(p("payload.gz"), idx_bytes({0, 0, 8, 3}, {10, 28, 28}, 100));
  expect_idx_error(p("payload.gz"), 3, {"payload.gz", "truncated payload", "100 of 7840"});
  write_gz_bytes(p("trailing.gz"), idx_bytes({0, 0, 8, 1}, {4}, 5));
  expect_idx_error(p("trailing.gz"), 1, {"trailing.gz", "trailing bytes"});
  write_gz_bytes(p("zero.gz"), idx_bytes({0, 0, 8, 1}, {0}, 0));
  expect_idx_error(p("zero.gz"), 1, {"zero.gz", "size 0"});
  write_gz_bytes(p("huge.gz"), idx_bytes({0, 0, 8, 3}, {0xffffffffu, 0xffffffffu, 2}, 0));
  expect_idx_error(p("huge.gz"), 3, {"huge.gz", "more than"});
  // A gzip stream cut in the middle: the decompressor's error, not a crash. Random-looking bytes keep
  // the compressed stream long enough to cut.
  {
    std::vector<uint8_t> noisy(5000);
    for (size_t i = 0; i < noisy.size(); ++i) noisy[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    write_idx_u8(p("cut.gz").string(), {5000}, noisy, true);
    std::string bytes;
    {
      std::ifstream in(p("cut.gz"), std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::ofstream out(p("cut.gz"), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  expect_idx_error(p("cut.gz"), 1, {"cut.gz"});
  expect_idx_error(p("absent.gz"), 1, {"cannot open", "absent.gz"});
  fs::remove_all(d);
}

TEST(FashionMnist, LoadsAGeneratedFolder) {
  fs::path d = write_fake_fmnist("fake", 12);
  ImageSet set = load_fashion_mnist(d.string(), DataPart::train);
  EXPECT_EQ(set.count, 12);
  EXPECT_EQ(set.height, 4);
  EXPECT_EQ(set.width, 3);
  EXPECT_EQ(set.num_classes, 10);
  ASSERT_EQ(set.class_names.size(), 10u);
  EXPECT_EQ(set.class_names[9], "Ankle boot");
  EXPECT_EQ(set.labels[11], 1);
  EXPECT_EQ(set.image(5)[2], 52);
  fs::remove_all(d);
}

TEST(FashionMnist, MissingFilesNameThePathAndThePackage) {
  fs::path d = fresh_dir("missing");
  try {
    load_fashion_mnist(d.string(), DataPart::test);
    FAIL() << "no error for an empty folder";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find((d / "t10k-images-idx3-ubyte.gz").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("apt-get install dataset-fashion-mnist"), std::string::npos) << msg;
  }
  fs::remove_all(d);
}

TEST(FashionMnist, InconsistentFilesAreErrors) {
  fs::path d = write_fake_fmnist("inconsistent", 6);
  write_idx_u8((d / "train-labels-idx1-ubyte.gz").string(), {5}, {0, 1, 2, 3, 4});
  EXPECT_THROW(load_fashion_mnist(d.string(), DataPart::train), Error);
  write_idx_u8((d / "train-labels-idx1-ubyte.gz").string(), {6}, {0, 1, 2, 3, 4, 10});
  try {
    load_fashion_mnist(d.string(), DataPart::train);
    FAIL() << "no error for label 10";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 5 is 10"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(FashionMnist, TheInstalledPackageHasTheDocumentedCounts) {
  const std::string dir = default_fashion_mnist_dir();
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  ImageSet test = load_fashion_mnist(dir, DataPart::test);
  EXPECT_EQ(test.count, 10000);
  EXPECT_EQ(test.height, 28);
  EXPECT_EQ(test.width, 28);
  std::vector<int> per_class(10, 0);
  for (int32_t l : test.labels) per_class[l]++;
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
}

TEST(Split, IsDeterministicDisjointAndComplete) {
  SplitIndices a = split_train_val(100, 20, 7), b = split_train_val(100, 20, 7), c = split_train_val(100, 20, 8);
  EXPECT_EQ(a.train.size(), 80u);
  EXPECT_EQ(a.val.size(), 20u);
  EXPECT_EQ(a.val, b.val);
  EXPECT_NE(a.val, c.val);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.val.begin(), a.val.end());
  EXPECT_EQ(all.size(), 100u);
  EXPECT_THROW(split_train_val(10, 10, 0), Error);
}

TEST(Loader, BatchesAreNormalizedAndLabelled) {
  fs::path d = write_fake_fmnist("batches", 12);
  ImageSet set = load_fashion_mnist(d.string(), DataPart::train);
  Batch b = batch_range(set, 10, 5);  // clipped to the 2 remaining images
  ASSERT_EQ(b.images.shape(), (Shape{2, 1, 4, 3}));
  EXPECT_EQ(b.labels.dtype(), DType::i64);
  EXPECT_EQ(b.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  const float expected = (103 / 255.f - 0.2860f) / 0.3530f;  // image 10, pixel 3
  EXPECT_NEAR(b.images.to_vector<float>()[3], expected, 1e-6);
  fs::remove_all(d);
}

TEST(Loader, EpochsArePermutationsAndResumeIsExact) {
  fs::path d = write_fake_fmnist("epochs", 10);
  ImageSet set = load_fashion_mnist(d.string(), DataPart::train);
  ImageLoader a(set, 3, {}, 42), b(set, 3, {}, 42);
  EXPECT_EQ(a.batches_per_epoch(), 3);  // the partial batch is dropped
  std::vector<std::vector<int64_t>> seen;
  for (int i = 0; i < 7; ++i) seen.push_back(a.next().indices);
  std::set<int64_t> epoch0;
  for (int i = 0; i < 3; ++i) epoch0.insert(seen[i].begin(), seen[i].end());
  EXPECT_EQ(epoch0.size(), 9u);  // no repeats inside an epoch
  EXPECT_NE(seen[0], seen[3]);   // epochs are reshuffled
  for (int i = 0; i < 7; ++i) EXPECT_EQ(b.next().indices, seen[i]);
  ImageLoader resumed(set, 3, {}, 42);
  resumed.set_state(1, 2);  // after 5 batches
  EXPECT_EQ(resumed.next().indices, seen[5]);
  EXPECT_EQ(resumed.next().indices, seen[6]);
  ImageLoader other(set, 3, {}, 43);
  EXPECT_NE(other.next().indices, seen[0]);
  fs::remove_all(d);
}

TEST(Augment, FlipMirrorsAndCropShiftsWithZeroPadding) {
  std::vector<uint8_t> img(4 * 5);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i + 1);
  int flips = 0;
  for (uint64_t s = 0; s < 40; ++s) {
    std::vector<uint8_t> a = img;
    RngStream rng(s, "t");
    augment_image(a.data(), 1, 4, 5, {0, true}, rng);
    EXPECT_EQ(rng.counter(), kAugmentDraws);
    bool mirrored = true, same = a == img;
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) mirrored &= a[y * 5 + x] == img[y * 5 + (4 - x)];
    EXPECT_TRUE(mirrored || same);
    flips += mirrored;
  }
  EXPECT_GT(flips, 5);
  EXPECT_LT(flips, 35);
  // Crop with padding: the result is the image shifted by (dx-p, dy-p) with zeros shifted in.
  for (uint64_t s = 0; s < 20; ++s) {
    std::vector<uint8_t> a = img;
    RngStream rng(s, "c");
    augment_image(a.data(), 1, 4, 5, {2, false}, rng);
    RngStream replay(s, "c");
    const int dx = static_cast<int>(replay.below(5)) - 2, dy = static_cast<int>(replay.below(5)) - 2;
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) {
        const int sy = y + dy, sx = x + dx;
        const int want = (sy >= 0 && sy < 4 && sx >= 0 && sx < 5) ? img[sy * 5 + sx] : 0;
        ASSERT_EQ(a[y * 5 + x], want) << "seed " << s << " at " << y << "," << x;
      }
  }
}

TEST(Loader, AugmentationIsDeterministicPerSeed) {
  fs::path d = write_fake_fmnist("augment", 8);
  ImageSet set = load_fashion_mnist(d.string(), DataPart::train);
  AugmentConfig aug{1, true};
  ImageLoader a(set, 4, aug, 5), b(set, 4, aug, 5);
  ImageLoader plain(set, 4, {}, 5);
  Batch x = a.next(), y = b.next(), z = plain.next();
  EXPECT_EQ(x.indices, z.indices);  // augmentation does not change the order
  EXPECT_EQ(x.images.to_vector<float>(), y.images.to_vector<float>());
  EXPECT_NE(x.images.to_vector<float>(), z.images.to_vector<float>());
  fs::remove_all(d);
}
