#pragma once
// Fashion-MNIST (Xiao et al. 2017) from Debian's dataset-fashion-mnist package: the four IDX .gz files
// in /usr/share/datasets/fashion-mnist (or $MOELAB_FASHION_MNIST_DIR, or an explicit folder).
#include <string>

#include "vision/data/image_set.h"

namespace moelab::vision {

enum class DataPart { train, test };

// $MOELAB_FASHION_MNIST_DIR when set, else the Debian package's folder.
std::string default_fashion_mnist_dir();

// Loads the training (60000) or test (10000) part; 28x28 grey images, 10 classes. A missing file is an
// error naming the path and the package that provides it; malformed files fail with the IDX reader's errors,
// and image and label files must agree in count.
ImageSet load_fashion_mnist(const std::string& dir, DataPart part);

}  // namespace moelab::vision
