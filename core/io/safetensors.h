#pragma once
// safetensors files on raw bytes (no Tensor dependency), with a CRC-32C per tensor in __metadata__
// ("crc32c.<name>", written by default, verified whenever present). Layout and an example: docs/formats.md §1
// and docs/io.md.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor/dtype.h"
#include "core/util/check.h"

namespace moelab::io {

// Every malformed file or invalid write request. what() names the file, the tensor and the byte offset.
class SafetensorsError : public Error {
 public:
  using Error::Error;
};

// The element types a file may declare, in the reference implementation's order (increasing alignment).
// moelab computes on F32/F64/I32/I64; the others are carried as raw bytes.
enum class StDType : uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

size_t st_dtype_size(StDType t);
std::string_view st_dtype_name(StDType t);                        // "BF16"
std::optional<StDType> st_dtype_from_name(std::string_view name);  // nullopt for unknown names
StDType to_st_dtype(DType t);
std::optional<DType> to_dtype(StDType t);                          // nullopt for raw-only dtypes

// One tensor to write: `nbytes` must equal numel(shape) * element size.
struct SafetensorsView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::optional<StDType> raw_dtype;  // when set, written instead of `dtype` (to pass BF16/U8/... through)

  StDType st_dtype() const { return raw_dtype ? *raw_dtype : to_st_dtype(dtype); }
};

// One tensor of a file that was read. `data` is 8-byte aligned and lives as long as its SafetensorsFile.
struct SafetensorsTensor {
  std::string name;
  StDType st_dtype = StDType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  size_t file_offset = 0;  // where its bytes start in the file

  int64_t numel() const;
  bool has_dtype() const { return to_dtype(st_dtype).has_value(); }
  DType dtype() const;             // throws SafetensorsError for raw-only dtypes (BF16, U8, ...)
  SafetensorsView view() const;    // for writing it back unchanged
  std::string shape_str() const;   // "[2, 3]"

  // Typed access; throws when T does not match the stored dtype.
  template <typename T> std::span<const T> span() const {
    check_element_type(dtype_of<T>::value);
    return {reinterpret_cast<const T*>(data), nbytes / sizeof(T)};
  }
  template <typename T> std::vector<T> to_vector() const {
    auto s = span<T>();
    return {s.begin(), s.end()};
  }

 private:
  void check_element_type(DType wanted) const;
};

// A parsed file owning its bytes.
class SafetensorsFile {
 public:
  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in data-offset order
  std::vector<std::string> names() const;                                      // in data-offset order
  size_t size() const { return tensors_.size(); }
  bool contains(std::string_view name) const;
  // Throws SafetensorsError naming the file and the closest existing names when absent.
  const SafetensorsTensor& get(std::string_view name) const;
  // The user metadata; the "crc32c.*" checksum entries are kept apart, in checksums().
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensor name -> stored CRC-32C (verified when the file was parsed); empty for files written without.
  const std::map<std::string, uint32_t>& checksums() const { return checksums_; }
  // Throws when absent; metadata_or returns `fallback` instead.
  const std::string& metadata_value(const std::string& key) const;
  std::string metadata_or(const std::string& key, std::string fallback) const;

 private:
  friend class SafetensorsParser;
  std::string path_;
  std::shared_ptr<uint64_t[]> storage_;  // the whole file, placed so that the data buffer is 8-aligned
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, uint32_t> checksums_;
};

// Metadata key prefix of the per-tensor checksums.
inline constexpr std::string_view kSafetensorsChecksumPrefix = "crc32c.";

// Largest header the reference implementation accepts.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Both verify every stored checksum: a mismatch throws SafetensorsError naming the file, the tensor and
// its byte range. Files without checksums (older checkpoints, other writers) are read unverified.
SafetensorsFile read_safetensors(const std::string& path);
// Parses an in-memory file; `source` names it in error messages.
SafetensorsFile parse_safetensors(std::string_view bytes, std::string source);

// Whether a writer adds the "crc32c.<name>" metadata entries (none: the reference writer's exact bytes).
enum class Checksums { crc32c, none };

// Writes atomically (temporary file, fsync, rename). Tensors are ordered as the reference writer
// orders them (dtype alignment descending, then name); `metadata` goes to "__metadata__".
void write_safetensors(const std::string& path, const std::vector<SafetensorsView>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       Checksums checksums = Checksums::crc32c);
// The exact bytes write_safetensors would write.
std::string serialize_safetensors(const std::vector<SafetensorsView>& tensors,
                                  const std::map<std::string, std::string>& metadata = {},
                                  Checksums checksums = Checksums::crc32c);

}  // namespace moelab::io
