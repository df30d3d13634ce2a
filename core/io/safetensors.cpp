#include "core/io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/io/text_util.h"

namespace moelab::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

using nlohmann::json;

namespace {

struct StDTypeInfo {
  StDType type;
  std::string_view name;
  size_t size;
};
constexpr StDTypeInfo kStDTypes[] = {
    {StDType::BOOL, "BOOL", 1},       {StDType::U8, "U8", 1},   {StDType::I8, "I8", 1},
    {StDType::F8_E5M2, "F8_E5M2", 1}, {StDType::F8_E4M3, "F8_E4M3", 1},
    {StDType::I16, "I16", 2},         {StDType::U16, "U16", 2}, {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2},       {StDType::I32, "I32", 4}, {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},         {StDType::F64, "F64", 8}, {StDType::I64, "I64", 8},
    {StDType::U64, "U64", 8},
};

std::string known_dtype_list() {
  std::string out;
  for (const auto& d : kStDTypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

std::string json_type_name(const json& j) {
  if (j.is_number_integer()) return "integer " + j.dump();
  if (j.is_number_float()) return "number " + j.dump();
  if (j.is_string()) return "string " + j.dump();
  return std::string(j.type_name());
}

// Byte position of every top-level key of a (valid) JSON object, in file order. Duplicate keys in any
// object are reported here, since nlohmann::json silently keeps the last one.
struct HeaderKey {
  std::string name;
  size_t offset;  // offset of the key's opening quote within the header
};

}  // namespace

// Builds a SafetensorsFile from the bytes of a whole file placed in `storage`.
class SafetensorsParser {
 public:
  SafetensorsParser(std::string path, const std::byte* file, size_t size) : path_(std::move(path)), file_(file), size_(size) {}

  SafetensorsFile parse(std::shared_ptr<uint64_t[]> storage) {
    SafetensorsFile out;
    out.path_ = path_;
    out.storage_ = std::move(storage);
    const uint64_t header_len = check_header_length();
    std::string_view header(reinterpret_cast<const char*>(file_) + 8, header_len);
    if (header.empty() || header[0] != '{')
      fail(8, "the header must begin with '{' (this is not a safetensors file, or it is corrupt)");
    // nlohmann::json stops at a NUL byte as at the end of input, which would let bytes after it through.
    if (size_t nul = header.find('\0'); nul != std::string_view::npos)
      fail(8 + nul, "the header holds a NUL byte (it must be JSON text padded with spaces; the file is corrupt)");
    json root;
    try {
      root = json::parse(header);
    } catch (const json::parse_error& e) {
      std::string detail = e.what();
      if (size_t p = detail.find(": "); p != std::string::npos) detail = detail.substr(p + 2);
      fail(8 + (e.byte > 0 ? e.byte - 1 : 0), "the header is not valid JSON: " + detail);
    } catch (const json::exception& e) {
      // Valid syntax the parser still refuses, such as a number beyond double range (1e400).
      std::string detail = e.what();
      if (size_t p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
      fail(8, "the header cannot be read as JSON: " + detail);
    }
    if (!root.is_object()) fail(8, "the header must be a JSON object, got " + std::string(root.type_name()));
    const std::vector<HeaderKey> keys = scan_keys(header);
    const size_t data_start = 8 + header_len;

    for (const auto& key : keys) {
      const size_t at = 8 + key.offset;
      if (key.name == "__metadata__") {
        out.metadata_ = parse_metadata(root[key.name], at);
        continue;
      }
      out.tensors_.push_back(parse_entry(key.name, root[key.name], at, data_start));
    }
    check_layout(out.tensors_, data_start);
    for (size_t i = 0; i < out.tensors_.size(); ++i) out.index_[out.tensors_[i].name] = i;
    out.checksums_ = take_checksums(out);
    verify_checksums(out);
    return out;
  }

 private:
  [[noreturn]] void fail(size_t byte, const std::string& what) const {
    throw SafetensorsError(path_ + ": at byte " + std::to_string(byte) + ": " + what);
  }
  [[noreturn]] void fail_tensor(const std::string& name, size_t byte, const std::string& what) const {
    throw SafetensorsError(path_ + ": tensor '" + name + "' at byte " + std::to_string(byte) + ": " + what);
  }

  uint64_t check_header_length() const {
    if (size_ < 8)
      fail(0, "file is " + std::to_string(size_) +
                  " bytes long, too short for the 8-byte header length (truncated or not a safetensors file)");
    uint64_t n;
    std::memcpy(&n, file_, 8);
    if (n > kSafetensorsMaxHeaderBytes)
      fail(0, "header length " + std::to_string(n) + " exceeds the limit of " +
                  std::to_string(kSafetensorsMaxHeaderBytes) + " bytes (corrupt file?)");
    if (n > size_ - 8)
      fail(0, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size_) +
                  " bytes); perhaps an incomplete download or a truncated file");
    return n;
  }

  std::vector<HeaderKey> scan_keys(std::string_view h) const {
    struct Frame {
      bool is_object;
      bool expect_key;
      std::set<std::string> keys;
    };
    std::vector<Frame> stack;
    std::vector<HeaderKey> top;
    std::string current_top;  // the top-level key whose value is being scanned
    for (size_t i = 0; i < h.size(); ++i) {
      const char c = h[i];
      if (c == '"') {
        size_t j = i + 1;
        while (j < h.size() && h[j] != '"') j += (h[j] == '\\') ? 2 : 1;
        if (!stack.empty() && stack.back().is_object && stack.back().expect_key) {
          std::string key;
          try {
            key = json::parse(h.substr(i, j - i + 1)).get<std::string>();
          } catch (const json::exception& e) {
            fail(8 + i, std::string("a key of the header is not a valid JSON string: ") + e.what());
          }
          stack.back().expect_key = false;
          if (!stack.back().keys.insert(key).second) {
            if (stack.size() == 1) fail(8 + i, "duplicate name '" + key + "' in the header");
            fail(8 + i, "duplicate field '" + key + "' inside the entry of '" + current_top + "'");
          }
          if (stack.size() == 1) {
            top.push_back({key, i});
            current_top = key;
          }
        }
        i = j;
      } else if (c == '{' || c == '[') {
        stack.push_back({c == '{', c == '{', {}});
      } else if (c == '}' || c == ']') {
        stack.pop_back();
      } else if (c == ',' && !stack.empty() && stack.back().is_object) {
        stack.back().expect_key = true;
      }
    }
    return top;
  }

  std::map<std::string, std::string> parse_metadata(const json& j, size_t at) const {
    if (!j.is_object())
      fail(at, "__metadata__ must be an object mapping strings to strings, got " + json_type_name(j));
    std::map<std::string, std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_string())
        fail(at, "__metadata__ entry '" + it.key() + "' is " + json_type_name(it.value()) +
                     "; metadata values must be strings");
      out[it.key()] = it.value().get<std::string>();
    }
    return out;
  }

  SafetensorsTensor parse_entry(const std::string& name, const json& j, size_t at, size_t data_start) const {
    if (!j.is_object())
      fail_tensor(name, at, "entry must be an object with dtype, shape and data_offsets, got " + json_type_name(j));
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
        fail_tensor(name, at, "unexpected field '" + it.key() + "' (expected dtype, shape, data_offsets)");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!j.contains(field)) fail_tensor(name, at, std::string("missing field '") + field + "'");

    SafetensorsTensor t;
    t.name = name;
    const json& dtype = j["dtype"];
    if (!dtype.is_string()) fail_tensor(name, at, "dtype must be a string, got " + json_type_name(dtype));
    auto st = st_dtype_from_name(dtype.get<std::string>());
    if (!st)
      fail_tensor(name, at, "unsupported dtype " + dtype.dump() + " (supported: " + known_dtype_list() + ")");
    t.st_dtype = *st;

    const json& shape = j["shape"];
    if (!shape.is_array()) fail_tensor(name, at, "shape must be an array of integers, got " + json_type_name(shape));
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : shape) {
      if (!d.is_number_unsigned())
        fail_tensor(name, at, "shape " + shape.dump() + " must hold non-negative integers, got " + json_type_name(d));
      uint64_t v = d.get<uint64_t>();
      overflow |= v > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, v, &numel);
      t.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
    }
    uint64_t need = 0;
    overflow |= __builtin_mul_overflow(numel, uint64_t(st_dtype_size(t.st_dtype)), &need);
    if (overflow) fail_tensor(name, at, "shape " + shape.dump() + " is too large (its byte count overflows)");

    const json& offsets = j["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail_tensor(name, at, "data_offsets must be [BEGIN, END] with non-negative integers, got " + offsets.dump());
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (end < begin) fail_tensor(name, at, "data_offsets " + offsets.dump() + " end before they begin");
    if (end - begin != need)
      fail_tensor(name, at,
                  "data_offsets " + offsets.dump() + " hold " + std::to_string(end - begin) + " bytes but dtype " +
                      std::string(st_dtype_name(t.st_dtype)) + " and shape " + t.shape_str() + " need " +
                      std::to_string(need) + " bytes");
    if (end > size_ - data_start)  // data_start <= size_ was checked with the header length
      fail_tensor(name, data_start + std::min<uint64_t>(begin, size_ - data_start),
                  "data [" + std::to_string(data_start + begin) + ", " + std::to_string(data_start + end) +
                      ") runs past the end of the file (" + std::to_string(size_) +
                      " bytes); perhaps an incomplete download or a truncated file");
    t.file_offset = data_start + begin;
    t.nbytes = need;
    t.data = file_ + t.file_offset;
    return t;
  }

  // Moves the "crc32c.<name>" entries out of the metadata. Either every tensor has one or none does,
  // and each names a tensor of the file: otherwise the header was damaged or edited.
  std::map<std::string, uint32_t> take_checksums(SafetensorsFile& f) const {
    std::map<std::string, uint32_t> out;
    for (auto it = f.metadata_.begin(); it != f.metadata_.end();) {
      if (it->first.rfind(kSafetensorsChecksumPrefix, 0) != 0) {
        ++it;
        continue;
      }
      const std::string name = it->first.substr(kSafetensorsChecksumPrefix.size());
      const std::string& hex = it->second;
      if (!f.index_.count(name))
        fail(8, "__metadata__ holds checksum '" + it->first + "' for a tensor the file does not have");
      if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        fail_tensor(name, 8, "checksum '" + it->first + "' is \"" + hex + "\", not 8 hexadecimal digits");
      out[name] = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
      it = f.metadata_.erase(it);
    }
    if (!out.empty())
      for (const auto& t : f.tensors_)
        if (!out.count(t.name))
          fail_tensor(t.name, t.file_offset,
                      "has no checksum although the other tensors have one (__metadata__ lacks '" +
                          std::string(kSafetensorsChecksumPrefix) + t.name + "')");
    return out;
  }

  void verify_checksums(const SafetensorsFile& f) const {
    for (const auto& t : f.tensors_) {
      auto it = f.checksums_.find(t.name);
      if (it == f.checksums_.end()) continue;
      const uint32_t actual = crc32c(t.data, t.nbytes);
      if (actual != it->second)
        fail_tensor(t.name, t.file_offset,
                    "data bytes [" + std::to_string(t.file_offset) + ", " + std::to_string(t.file_offset + t.nbytes) +
                        ") fail their CRC-32C check (stored " + crc32c_hex(it->second) + ", computed " +
                        crc32c_hex(actual) + "): the file is damaged");
    }
  }

  // The reference rule: sorted by offset, every tensor starts where the previous one ended, and the
  // last one ends at the end of the file.
  void check_layout(std::vector<SafetensorsTensor>& tensors, size_t data_start) const {
    std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.file_offset, a.nbytes) < std::pair(b.file_offset, b.nbytes);
    });
    size_t expected = data_start;
    const SafetensorsTensor* prev = nullptr;
    for (const auto& t : tensors) {
      if (t.file_offset > expected)
        fail_tensor(t.name, expected,
                    "the data buffer has a hole: bytes [" + std::to_string(expected) + ", " +
                        std::to_string(t.file_offset) + ") belong to no tensor" +
                        (prev ? " (between '" + prev->name + "' and '" + t.name + "')" : " (before '" + t.name + "')"));
      if (t.file_offset < expected)
        fail_tensor(t.name, t.file_offset,
                    "data [" + std::to_string(t.file_offset) + ", " + std::to_string(t.file_offset + t.nbytes) +
                        ") overlaps tensor '" + prev->name + "' [" + std::to_string(prev->file_offset) + ", " +
                        std::to_string(prev->file_offset + prev->nbytes) + ")");
      expected = t.file_offset + t.nbytes;
      prev = &t;
    }
    if (expected != size_)
      fail(expected, std::to_string(size_ - expected) + " bytes at the end of the file belong to no tensor" +
                         (prev ? " (after '" + prev->name + "')" : ""));
  }

  std::string path_;
  const std::byte* file_;
  size_t size_;
};

// ---- dtypes ----

size_t st_dtype_size(StDType t) { return kStDTypes[static_cast<size_t>(t)].size; }
std::string_view st_dtype_name(StDType t) { return kStDTypes[static_cast<size_t>(t)].name; }

std::optional<StDType> st_dtype_from_name(std::string_view name) {
  for (const auto& d : kStDTypes)
    if (d.name == name) return d.type;
  return std::nullopt;
}

StDType to_st_dtype(DType t) {
  switch (t) {
    case DType::f32: return StDType::F32;
    case DType::f64: return StDType::F64;
    case DType::i32: return StDType::I32;
    case DType::i64: return StDType::I64;
  }
  return StDType::F32;
}

std::optional<DType> to_dtype(StDType t) {
  switch (t) {
    case StDType::F32: return DType::f32;
    case StDType::F64: return DType::f64;
    case StDType::I32: return DType::i32;
    case StDType::I64: return DType::i64;
    default: return std::nullopt;
  }
}

// ---- SafetensorsTensor / SafetensorsFile ----

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

DType SafetensorsTensor::dtype() const {
  auto d = to_dtype(st_dtype);
  if (!d)
    throw SafetensorsError("tensor '" + name + "' has dtype " + std::string(st_dtype_name(st_dtype)) +
                           ", which moelab carries as raw bytes but cannot compute on (use F32, F64, I32 or I64)");
  return *d;
}

void SafetensorsTensor::check_element_type(DType wanted) const {
  if (dtype() != wanted)
    throw SafetensorsError("tensor '" + name + "' holds " + std::string(st_dtype_name(st_dtype)) + ", not " +
                           std::string(dtype_safetensors_name(wanted)));
}

SafetensorsView SafetensorsTensor::view() const {
  SafetensorsView v;
  v.name = name;
  v.shape = shape;
  v.data = data;
  v.nbytes = nbytes;
  if (auto d = to_dtype(st_dtype)) v.dtype = *d;
  else v.raw_dtype = st_dtype;
  return v;
}

std::string SafetensorsTensor::shape_str() const { return format_int_list(shape); }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(std::string_view name) const { return index_.find(std::string(name)) != index_.end(); }

const SafetensorsTensor& SafetensorsFile::get(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) {
    std::string msg = path_ + ": no tensor named '" + std::string(name) + "' (the file holds " +
                      std::to_string(tensors_.size()) + " tensors)";
    if (auto near = nearest_match(name, names())) msg += "; did you mean '" + *near + "'?";
    throw SafetensorsError(msg);
  }
  return tensors_[it->second];
}

const std::string& SafetensorsFile::metadata_value(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) throw SafetensorsError(path_ + ": __metadata__ has no key '" + key + "'");
  return it->second;
}

std::string SafetensorsFile::metadata_or(const std::string& key, std::string fallback) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? fallback : it->second;
}

// ---- reading ----

namespace {

// Storage for a whole file of `size` bytes, shifted so that the data buffer (after the header) is 8-aligned.
std::pair<std::shared_ptr<uint64_t[]>, std::byte*> aligned_storage_for(size_t size, uint64_t header_len) {
  const size_t shift = (8 - (8 + header_len) % 8) % 8;
  std::shared_ptr<uint64_t[]> storage(new uint64_t[(size + shift + 7) / 8 + 1]);
  return {storage, reinterpret_cast<std::byte*>(storage.get()) + shift};
}

}  // namespace

SafetensorsFile parse_safetensors(std::string_view bytes, std::string source) {
  uint64_t header_len = 0;
  if (bytes.size() >= 8) std::memcpy(&header_len, bytes.data(), 8);
  auto [storage, start] = aligned_storage_for(bytes.size(), header_len);
  if (!bytes.empty()) std::memcpy(start, bytes.data(), bytes.size());
  return SafetensorsParser(std::move(source), start, bytes.size()).parse(std::move(storage));
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw SafetensorsError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(f);
    throw SafetensorsError(path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  uint64_t header_len = 0;
  if (size >= 8 && std::fread(&header_len, 1, 8, f) != 8) header_len = 0;
  std::rewind(f);
  auto [storage, start] = aligned_storage_for(size, header_len);
  const size_t got = size ? std::fread(start, 1, size, f) : 0;
  std::fclose(f);
  if (got != size) throw SafetensorsError(path + ": read " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
  return SafetensorsParser(path, start, size).parse(std::move(storage));
}

// ---- writing ----

namespace {

struct PlannedTensor {
  const SafetensorsView* view;
  StDType st_dtype;
  uint64_t begin, end;
};

std::string json_string(const std::string& text, const std::string& what) {
  try {
    return json(text).dump();
  } catch (const json::exception&) {
    throw SafetensorsError("cannot write safetensors: " + what + " is not valid UTF-8");
  }
}

// Reference order: dtype alignment descending (the StDType order), then name; offsets follow.
std::pair<std::string, std::vector<PlannedTensor>> plan(const std::vector<SafetensorsView>& views,
                                                        const std::map<std::string, std::string>& user_metadata,
                                                        Checksums checksums) {
  std::vector<PlannedTensor> planned;
  std::set<std::string> seen;
  for (const auto& v : views) {
    const std::string who = "cannot write safetensors: tensor '" + v.name + "': ";
    if (v.name.empty() || v.name == "__metadata__")
      throw SafetensorsError("cannot write safetensors: '" + v.name + "' is not a valid tensor name");
    if (!seen.insert(v.name).second) throw SafetensorsError(who + "duplicate name");
    uint64_t numel = 1;
    for (int64_t d : v.shape) {
      if (d < 0) throw SafetensorsError(who + "negative dimension in shape " + format_int_list(v.shape));
      if (__builtin_mul_overflow(numel, uint64_t(d), &numel)) throw SafetensorsError(who + "shape too large");
    }
    const StDType t = v.st_dtype();
    if (numel * st_dtype_size(t) != v.nbytes)
      throw SafetensorsError(who + "nbytes is " + std::to_string(v.nbytes) + " but dtype " +
                             std::string(st_dtype_name(t)) + " and shape " + format_int_list(v.shape) + " need " +
                             std::to_string(numel * st_dtype_size(t)));
    if (v.nbytes > 0 && v.data == nullptr) throw SafetensorsError(who + "data is null");
    planned.push_back({&v, t, 0, 0});
  }
  std::map<std::string, std::string> metadata = user_metadata;
  if (checksums == Checksums::crc32c) {
    for (const auto& [k, v] : user_metadata)
      if (k.rfind(kSafetensorsChecksumPrefix, 0) == 0)
        throw SafetensorsError("cannot write safetensors: metadata key '" + k + "' is reserved for checksums");
    for (const auto& p : planned)
      metadata[std::string(kSafetensorsChecksumPrefix) + p.view->name] = crc32c_hex(crc32c(p.view->data, p.view->nbytes));
  }
  std::sort(planned.begin(), planned.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    if (a.st_dtype != b.st_dtype) return a.st_dtype > b.st_dtype;
    return a.view->name < b.view->name;
  });
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_string(k, "metadata key '" + k + "'") + ":" +
                json_string(v, "metadata value of '" + k + "'");
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (auto& p : planned) {
    p.begin = offset;
    p.end = offset += p.view->nbytes;
    std::string shape = "[";
    for (size_t i = 0; i < p.view->shape.size(); ++i) shape += (i ? "," : "") + std::to_string(p.view->shape[i]);
    header += std::string(header.size() > 1 ? "," : "") + json_string(p.view->name, "tensor name '" + p.view->name + "'") +
              ":{\"dtype\":\"" + std::string(st_dtype_name(p.st_dtype)) + "\",\"shape\":" + shape +
              "],\"data_offsets\":[" + std::to_string(p.begin) + "," + std::to_string(p.end) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps every tensor's data 8-byte aligned
  return {std::move(header), std::move(planned)};
}

void emit(AtomicFileSink& sink, const std::string& header, const std::vector<PlannedTensor>& planned) {
  const uint64_t n = header.size();
  sink.write(&n, 8);
  sink.write(header);
  for (const auto& p : planned)
    if (p.view->nbytes) sink.write(p.view->data, p.view->nbytes);
}

class StringSink : public AtomicFileSink {
 public:
  using AtomicFileSink::write;
  void write(const void* data, size_t nbytes) override { out.append(static_cast<const char*>(data), nbytes); }
  std::string out;
};

}  // namespace

std::string serialize_safetensors(const std::vector<SafetensorsView>& tensors,
                                  const std::map<std::string, std::string>& metadata, Checksums checksums) {
  auto [header, planned] = plan(tensors, metadata, checksums);
  StringSink sink;
  emit(sink, header, planned);
  return std::move(sink.out);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsView>& tensors,
                       const std::map<std::string, std::string>& metadata, Checksums checksums) {
  const auto plan_result = plan(tensors, metadata, checksums);  // a named pair: lambdas cannot capture bindings in clang 14
  write_file_atomic(path, [&](AtomicFileSink& sink) { emit(sink, plan_result.first, plan_result.second); });
}

}  // namespace moelab::io
