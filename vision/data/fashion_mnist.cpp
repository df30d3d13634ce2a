#include "vision/data/fashion_mnist.h"

#include <cstdlib>
#include <filesystem>

#include "core/util/check.h"
#include "vision/data/idx.h"

namespace moelab::vision {

std::string default_fashion_mnist_dir() {
  if (const char* env = std::getenv("MOELAB_FASHION_MNIST_DIR"); env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

ImageSet load_fashion_mnist(const std::string& dir, DataPart part) {
  const std::string prefix = part == DataPart::train ? "train" : "t10k";
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  for (const auto& p : {images_path, labels_path})
    MOELAB_CHECK(std::filesystem::exists(p),
                 "Fashion-MNIST file " << p << " not found; install it with `sudo apt-get install "
                                          "dataset-fashion-mnist` (or set data.dir / MOELAB_FASHION_MNIST_DIR "
                                          "to a folder holding the four IDX .gz files)");
  IdxArray images = read_idx_u8(images_path, 3);
  IdxArray labels = read_idx_u8(labels_path, 1);
  MOELAB_CHECK(images.dims[0] == labels.dims[0], "Fashion-MNIST: " << images_path << " holds " << images.dims[0]
                                                                   << " images but " << labels_path << " holds "
                                                                   << labels.dims[0] << " labels");
  ImageSet set;
  set.count = images.dims[0];
  set.channels = 1;
  set.height = images.dims[1];
  set.width = images.dims[2];
  set.pixels = std::move(images.data);
  set.num_classes = 10;
  set.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  set.labels.resize(set.count);
  for (int64_t i = 0; i < set.count; ++i) {
    MOELAB_CHECK(labels.data[i] < set.num_classes, "Fashion-MNIST: " << labels_path << " entry " << i << " is "
                                                                     << int(labels.data[i]) << ", not a class in [0, 10)");
    set.labels[i] = labels.data[i];
  }
  // The training set's pixel statistics (on the [0, 1] scale).
  set.mean = {0.2860f};
  set.std = {0.3530f};
  return set;
}

}  // namespace moelab::vision
