// gst-sam3 predictor: reading and writing checkpoints without Python.
//
// torch.save zip archives (.pt / .pth)
//   The zip container is opened with LibTorch's caffe2::serialize::PyTorchStreamReader
//   (records <archive>/data.pkl and <archive>/data/<storage key>). data.pkl is decoded by
//   the small restricted unpickler below rather than torch::pickle_load, which in
//   LibTorch 1.13 aborts on the OrderedDict-with-`_metadata` that model.state_dict()
//   pickles. The unpickler implements the opcodes of pickle protocols 2-4 that torch.save
//   emits for a (nested) dict of tensors and resolves only an allow-list of globals
//   (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the
//   typed storages); any other global or opcode is refused, so a checkpoint cannot run
//   code. Every read of the stream, every stack / memo access and every tensor extent is
//   bounds-checked, object counts are capped, and the zip central directory is scanned
//   beforehand so that no record can make the reader allocate more than the file holds.
//
// safetensors
//   Parsed directly: u64 LE header length, JSON header (nlohmann::json), raw LE data. All
//   offsets / sizes are validated before any tensor is allocated; each tensor is read
//   straight into its own buffer. C64 (complex64) is accepted as an extension.
#include "sam3/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sam3/errors.h"

namespace sam3 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#else
constexpr bool kLittleEndian = true;
#endif

// Limits that no genuine checkpoint comes near; they bound what a hostile file can cost.
constexpr size_t kMaxPickleObjects = size_t{1} << 22;  // values created by the unpickler
constexpr size_t kMaxPickleStack = size_t{1} << 20;    // stack entries
constexpr size_t kMaxPickleMemo = size_t{1} << 22;     // memo entries
constexpr size_t kMaxPickleMarks = size_t{1} << 16;    // nested MARKs
constexpr size_t kMaxGlobalNameLength = 256;
constexpr size_t kMaxTensorDims = 64;
constexpr int kMaxDictNesting = 64;
// A tensor view may repeat storage elements (stride 0, expand()); its materialised copy
// may exceed its storage only up to this size.
constexpr uint64_t kMaxExpandedBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxZipExpansion = 4;  // all records' bytes <= 4 x the file
constexpr uint64_t kMaxSafetensorsHeader = uint64_t{100} << 20;  // as in the reference

const char kUnrecognisedFormat[] =
    "unrecognised checkpoint format (expected a torch.save .pt/.pth zip archive or "
    ".safetensors)";
const char kLegacyFormat[] =
    "legacy (non-zip) torch.save format is not supported; re-save the checkpoint with "
    "torch>=1.6 (torch.save(torch.load(f), f2) writes the zip format)";

[[noreturn]] void fail(const std::string& path, const std::string& message) {
  throw CheckpointError(path + ": " + message);
}

uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint64_t le64(const unsigned char* p) { return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32); }
const unsigned char* bytes_of(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string shape_string(const std::vector<int64_t>& v) {
  std::ostringstream os;
  os << '[';
  for (size_t k = 0; k < v.size(); ++k) os << (k ? ", " : "") << v[k];
  os << ']';
  return os.str();
}

// numel of a shape; false on a negative size or overflow.
bool checked_numel(const std::vector<int64_t>& shape, uint64_t* numel) {
  uint64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(s), &n)) return false;
  }
  *numel = n;
  return n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

// A read-only file with bounds-checked positional reads.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) fail(path, "file not found");
    if (!fs::is_regular_file(st)) fail(path, "not a regular file");
    size_ = fs::file_size(path, ec);
    if (ec) fail(path, "cannot determine the file size: " + ec.message());
    in_.open(path, std::ios::binary);
    if (!in_) fail(path, "cannot open the file for reading");
  }

  uint64_t size() const { return size_; }

  void read_into(uint64_t offset, void* dst, uint64_t n) {
    check_range(offset, n);
    if (n == 0) return;
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_ || static_cast<uint64_t>(in_.gcount()) != n) {
      fail(path_, "read error at offset " + std::to_string(offset));
    }
  }

  std::string read(uint64_t offset, uint64_t n) {
    check_range(offset, n);  // before allocating
    std::string s(n, '\0');
    read_into(offset, s.data(), n);
    return s;
  }

 private:
  void check_range(uint64_t offset, uint64_t n) const {
    if (offset > size_ || n > size_ - offset) {
      fail(path_, "unexpected end of file: " + std::to_string(n) + " bytes at offset " +
                      std::to_string(offset) + " but the file has " + std::to_string(size_) +
                      " (truncated?)");
    }
  }

  std::string path_;
  uint64_t size_ = 0;
  std::ifstream in_;
};

bool is_legacy_torch_save(const std::string& head) {
  // Pickled magic number 0x1950a86a20f9469cfc6c: PROTO 2, LONG1 of 10 bytes.
  static const unsigned char kMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                         0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return head.size() >= sizeof(kMagic) && std::memcmp(head.data(), kMagic, sizeof(kMagic)) == 0;
}

// ---------------------------------------------------------------------------------------
// Zip central directory pre-scan.

struct ZipEntry {
  uint64_t uncompressed_size = 0;
  uint64_t compressed_size = 0;
  uint64_t local_offset = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;
  uint16_t flags = 0;
  bool directory = false;  // as miniz sees it: name ends with '/' or DOS directory attribute
};

struct ZipDirectory {
  std::map<std::string, ZipEntry> entries;
  std::string first_name;  // of the first central directory entry
};

// CRC-32 (zip, IEEE 802.3) of a small buffer.
uint32_t crc32_of(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Reads the zip central directory (zip64 aware) and returns name -> sizes. Rejects
// archives whose records claim more bytes than the file holds: LibTorch 1.13's reader
// mallocs the claimed size before reading.
ZipDirectory scan_zip_directory(const std::string& path, InputFile& file) {
  auto bad = [&](const std::string& why) { fail(path, "not a valid torch zip archive: " + why); };
  const uint64_t size = file.size();
  constexpr uint64_t kEocdSize = 22;
  if (size < kEocdSize) bad("file too short (truncated?)");
  const uint64_t tail_len = std::min<uint64_t>(size, kEocdSize + 0xFFFF);
  const std::string tail = file.read(size - tail_len, tail_len);
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_len - kEocdSize); i >= 0; --i) {
    if (std::memcmp(tail.data() + i, "PK\x05\x06", 4) == 0) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad("no end-of-central-directory record (truncated or not a zip file)");
  const unsigned char* e = bytes_of(tail) + eocd;
  uint64_t count = le16(e + 10);
  uint64_t cd_size = le32(e + 12);
  uint64_t cd_offset = le32(e + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    const uint64_t eocd_pos = size - tail_len + static_cast<uint64_t>(eocd);
    if (eocd_pos < 20) bad("missing zip64 end-of-central-directory locator");
    const std::string loc = file.read(eocd_pos - 20, 20);
    if (std::memcmp(loc.data(), "PK\x06\x07", 4) != 0) {
      bad("missing zip64 end-of-central-directory locator");
    }
    const uint64_t rec_pos = le64(bytes_of(loc) + 8);
    if (rec_pos > size || size - rec_pos < 56) bad("zip64 end-of-central-directory out of range");
    const std::string rec = file.read(rec_pos, 56);
    if (std::memcmp(rec.data(), "PK\x06\x06", 4) != 0) {
      bad("corrupt zip64 end-of-central-directory record");
    }
    count = le64(bytes_of(rec) + 32);
    cd_size = le64(bytes_of(rec) + 40);
    cd_offset = le64(bytes_of(rec) + 48);
  }
  if (cd_offset > size || cd_size > size - cd_offset) {
    bad("central directory out of range (truncated?)");
  }
  if (count > cd_size / 46) bad("central directory entry count inconsistent with its size");
  const std::string cd = file.read(cd_offset, cd_size);
  ZipDirectory dir;
  std::map<std::string, ZipEntry>& entries = dir.entries;
  std::set<std::string> folded_names;  // miniz looks names up case-insensitively
  uint64_t total_compressed = 0, total_uncompressed = 0;
  uint64_t pos = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (cd_size - pos < 46) bad("central directory truncated");
    const unsigned char* h = bytes_of(cd) + pos;
    if (std::memcmp(h, "PK\x01\x02", 4) != 0) bad("corrupt central directory");
    ZipEntry entry;
    entry.flags = le16(h + 8);
    entry.method = le16(h + 10);
    entry.crc32 = le32(h + 16);
    entry.compressed_size = le32(h + 20);
    entry.uncompressed_size = le32(h + 24);
    uint64_t local_offset = le32(h + 42);
    const uint16_t name_len = le16(h + 28);
    const uint16_t extra_len = le16(h + 30);
    const uint16_t comment_len = le16(h + 32);
    const uint64_t entry_len = uint64_t{46} + name_len + extra_len + comment_len;
    if (cd_size - pos < entry_len) bad("central directory truncated");
    std::string name(cd.data() + pos + 46, name_len);
    if (entry.uncompressed_size == 0xFFFFFFFF || entry.compressed_size == 0xFFFFFFFF ||
        local_offset == 0xFFFFFFFF) {
      const unsigned char* x = h + 46 + name_len;
      uint64_t left = extra_len;
      bool found = false;
      while (left >= 4 && !found) {
        const uint16_t id = le16(x);
        const uint16_t len = le16(x + 2);
        if (len > left - 4) break;
        if (id == 0x0001) {
          const unsigned char* f = x + 4;
          uint64_t field_left = len;
          for (uint64_t* v : {&entry.uncompressed_size, &entry.compressed_size, &local_offset}) {
            if (*v != 0xFFFFFFFF) continue;
            if (field_left < 8) bad("corrupt zip64 extra field of '" + name + "'");
            *v = le64(f);
            f += 8;
            field_left -= 8;
          }
          found = true;
        }
        x += 4 + len;
        left -= 4 + len;
      }
      if (!found) bad("missing zip64 extra field of '" + name + "'");
    }
    if (entry.uncompressed_size > size || entry.compressed_size > size || local_offset > size) {
      bad("record '" + name + "' claims " + std::to_string(entry.uncompressed_size) +
          " bytes, more than the whole file (" + std::to_string(size) + " bytes)");
    }
    entry.local_offset = local_offset;
    // Records must not share bytes (each would be read, and allocated, on its own):
    // their compressed sizes add up to at most the file; a deflated record may expand,
    // all together to at most kMaxZipExpansion times the file.
    if (__builtin_add_overflow(total_compressed, entry.compressed_size, &total_compressed) ||
        total_compressed > size ||
        __builtin_add_overflow(total_uncompressed, entry.uncompressed_size,
                               &total_uncompressed) ||
        total_uncompressed > kMaxZipExpansion * size) {
      bad("the records claim more bytes than the file holds (overlapping records at '" + name +
          "'?)");
    }
    entry.directory = (!name.empty() && name.back() == '/') || (le32(h + 38) & 0x10) != 0;
    std::string folded = name;
    for (char& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!folded_names.insert(folded).second) bad("record '" + name + "' occurs twice");
    if (k == 0) dir.first_name = name;
    entries[name] = entry;
    pos += entry_len;
  }
  if (entries.empty()) bad("the archive is empty");
  return dir;
}

// The checks PyTorchStreamReader's constructor makes after opening the archive
// (archive folder, version record), made beforehand: LibTorch 1.13 leaks the zip
// reader's state when its constructor throws.
void check_torch_zip_layout(const std::string& path, InputFile& file, const ZipDirectory& dir) {
  auto bad = [&](const std::string& why) { fail(path, "not a valid torch zip archive: " + why); };
  if (file.size() > 8 && file.read(0, 8) == "PYTORCH1") {
    bad("an archive of the PyTorch preview release is not supported");
  }
  const size_t slash = dir.first_name.find('/');
  if (slash == std::string::npos) {
    bad("record '" + dir.first_name + "' is not in the archive folder");
  }
  const std::string folder = dir.first_name.substr(0, slash + 1);
  // miniz "extracts" a directory or an empty compressed stream without writing the buffer
  // LibTorch allocated for the record: such records would be read as uninitialised memory.
  for (const auto& [name, e] : dir.entries) {
    const std::string rel = name.compare(0, folder.size(), folder) == 0 ? name.substr(folder.size())
                                                                         : std::string();
    if (rel != "data.pkl" && rel != "byteorder" && rel != "version" && rel != ".data/version" &&
        rel.compare(0, 5, "data/") != 0) {
      continue;
    }
    if (e.directory) bad("record '" + name + "' is marked as a directory");
    if (e.compressed_size == 0 && e.uncompressed_size != 0) {
      bad("record '" + name + "' has no data but claims " + std::to_string(e.uncompressed_size) +
          " bytes");
    }
  }
  auto it = dir.entries.find(folder + ".data/version");
  if (it == dir.entries.end()) it = dir.entries.find(folder + "version");
  if (it == dir.entries.end()) bad("no '" + folder + "version' record");
  const ZipEntry& v = it->second;
  // Flags miniz refuses: encrypted (0x1), patch data (0x20), strong encryption (0x40),
  // masked local header (0x2000).
  if (v.method != 0 || (v.flags & 0x2061) != 0 || v.compressed_size != v.uncompressed_size ||
      v.uncompressed_size > 64) {
    bad("the version record is compressed, encrypted or too long");
  }
  if (v.local_offset > file.size() || file.size() - v.local_offset < 30) {
    bad("the version record is out of range (truncated?)");
  }
  const std::string local = file.read(v.local_offset, 30);
  if (std::memcmp(local.data(), "PK\x03\x04", 4) != 0) {
    bad("corrupt local header of the version record");
  }
  const uint64_t data_offset = v.local_offset + 30 + le16(bytes_of(local) + 26) +
                               le16(bytes_of(local) + 28);
  if (data_offset > file.size() || file.size() - data_offset < v.compressed_size) {
    bad("the version record is out of range (truncated?)");
  }
  const std::string text = file.read(data_offset, v.compressed_size);
  if (crc32_of(text) != v.crc32) bad("the version record fails its CRC check");
  uint64_t version = 0;
  try {
    version = std::stoull(text);
  } catch (const std::exception&) {
    bad("version record '" + text + "' is not a number");
  }
  if (version < caffe2::serialize::kMinSupportedFileFormatVersion ||
      version > caffe2::serialize::kMaxSupportedFileFormatVersion) {
    bad("unsupported archive version " + std::to_string(version) + " (supported " +
        std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
        std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) + ")");
  }
}

// ---------------------------------------------------------------------------------------
// Restricted unpickler.

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

// The allowed globals.
enum class Callable : uint8_t {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::kNone;
  Callable callable = Callable::kOrderedDict;      // kGlobal
  c10::ScalarType dtype = c10::ScalarType::Float;  // kGlobal (storage type), kStorage
  int64_t i = 0;                                   // kBool, kInt; kStorage: numel
  double f = 0.0;                                  // kFloat
  std::string s;                                   // kString; kStorage: key; kGlobal: name
  std::vector<ValuePtr> items;                     // kTuple, kList; kDict: k0, v0, k1, v1...
  torch::Tensor tensor;                            // kTensor
};

struct StorageType {
  const char* name;
  c10::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", c10::ScalarType::Float},
    {"DoubleStorage", c10::ScalarType::Double},
    {"HalfStorage", c10::ScalarType::Half},
    {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"ComplexFloatStorage", c10::ScalarType::ComplexFloat},
    {"ComplexDoubleStorage", c10::ScalarType::ComplexDouble},
    {"LongStorage", c10::ScalarType::Long},
    {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short},
    {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},
    {"BoolStorage", c10::ScalarType::Bool},
};

// Returns the 1-D tensor of a storage: (key, dtype, numel) -> tensor of numel elements.
using StorageLoader =
    std::function<torch::Tensor(const std::string& key, c10::ScalarType dtype, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(std::string path, const char* data, size_t size, StorageLoader load_storage)
      : path_(std::move(path)), data_(data), size_(size), load_storage_(std::move(load_storage)) {}

  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  // Breaks any reference cycle a crafted stream may have built (a list appended to
  // itself), and keeps destruction non-recursive however deep the nesting.
  ~Unpickler() {
    for (auto& v : all_) v->items.clear();
  }

  ValuePtr run();

 private:
  [[noreturn]] void error(const std::string& message) const {
    fail(path_, "data.pkl: " + message + " (at byte " + std::to_string(op_pos_) + ")");
  }

  void need(uint64_t n) const {
    if (n > size_ - pos_) {
      error("truncated pickle stream (needs " + std::to_string(n) + " more bytes, " +
            std::to_string(size_ - pos_) + " left)");
    }
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t uint_le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t{static_cast<uint8_t>(data_[pos_ + k])} << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    need(n);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    const size_t end = std::min<size_t>(size_, pos_ + kMaxGlobalNameLength);
    for (size_t k = pos_; k < end; ++k) {
      if (data_[k] == '\n') {
        std::string s(data_ + pos_, k - pos_);
        pos_ = k + 1;
        return s;
      }
    }
    error("unterminated or overlong GLOBAL name");
  }

  ValuePtr make(Kind kind) {
    if (all_.size() >= kMaxPickleObjects) error("too many objects in the pickle stream");
    auto v = std::make_shared<Value>();
    v->kind = kind;
    all_.push_back(v);
    return v;
  }
  ValuePtr make_int(int64_t i) {
    auto v = make(Kind::kInt);
    v->i = i;
    return v;
  }
  ValuePtr make_string(std::string s) {
    auto v = make(Kind::kString);
    v->s = std::move(s);
    return v;
  }

  size_t mark_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxPickleStack) error("pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.size() <= mark_base()) error("pickle stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    if (stack_.size() <= mark_base()) error("pickle stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) error("missing MARK");
    const size_t base = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + base),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(base);
    return items;
  }

  void memo_put(uint64_t index) {
    const ValuePtr& v = top();
    if (memo_.size() >= kMaxPickleMemo && memo_.count(index) == 0) error("pickle memo too large");
    memo_[index] = v;
  }
  ValuePtr memo_get(uint64_t index) const {
    auto it = memo_.find(index);
    if (it == memo_.end()) error("memo index " + std::to_string(index) + " is not defined");
    return it->second;
  }

  Value& expect(const ValuePtr& v, Kind kind, const char* what) const {
    if (v->kind != kind) {
      error(std::string(what) + ": expected " + kind_name(kind) + ", got " + kind_name(v->kind));
    }
    return *v;
  }
  int64_t as_int(const ValuePtr& v, const char* what) const {
    return expect(v, Kind::kInt, what).i;
  }
  std::vector<int64_t> as_int_tuple(const ValuePtr& v, const char* what) const {
    const Value& t = expect(v, Kind::kTuple, what);
    if (t.items.size() > kMaxTensorDims) error(std::string(what) + ": too many dimensions");
    std::vector<int64_t> out;
    for (const auto& item : t.items) out.push_back(as_int(item, what));
    return out;
  }

  ValuePtr resolve_global(const std::string& module, const std::string& name);
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);
  torch::Tensor rebuild_tensor(const Value& storage, int64_t offset,
                               const std::vector<int64_t>& sizes,
                               const std::vector<int64_t>& strides);

  std::string path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  StorageLoader load_storage_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::vector<ValuePtr> all_;
  // Copies made for tensor views (rebuild_tensor) against the storages they view.
  std::set<std::string> storages_seen_;
  uint64_t storage_bytes_ = 0;
  uint64_t copied_bytes_ = 0;
};

ValuePtr Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    const uint8_t op = u8();
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = u8();
        if (proto > 5) error("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95:  // FRAME (protocol 4): only a length hint
        uint_le(8);
        break;
      case '.': {  // STOP
        ValuePtr result = pop();
        return result;
      }
      case '(':  // MARK
        if (marks_.size() >= kMaxPickleMarks) error("MARKs nested too deeply");
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (stack_.size() > mark_base()) {
          pop();
        } else {
          pop_mark();
        }
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2': {  // DUP
        ValuePtr v = top();
        push(std::move(v));
        break;
      }
      case 'N':  // NONE
        push(make(Kind::kNone));
        break;
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        auto v = make(Kind::kBool);
        v->i = op == 0x88;
        push(std::move(v));
        break;
      }
      case 'K':  // BININT1
        push(make_int(static_cast<int64_t>(uint_le(1))));
        break;
      case 'M':  // BININT2
        push(make_int(static_cast<int64_t>(uint_le(2))));
        break;
      case 'J':  // BININT
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(uint_le(4)))));
        break;
      case 0x8a: {  // LONG1
        const uint8_t n = u8();
        if (n > 8) error("integer too large (" + std::to_string(n) + " bytes)");
        uint64_t v = uint_le(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign
        push(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian)
        need(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + k]);
        pos_ += 8;
        auto v = make(Kind::kFloat);
        std::memcpy(&v->f, &bits, sizeof bits);
        push(std::move(v));
        break;
      }
      case 'X':  // BINUNICODE
      case 'B':  // BINBYTES (kept as a string; only ever used as an opaque value)
        push(make_string(bytes(uint_le(4))));
        break;
      case 'T': {  // BINSTRING (signed length)
        const auto n = static_cast<int32_t>(static_cast<uint32_t>(uint_le(4)));
        if (n < 0) error("negative string length");
        push(make_string(bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
      case 'C':   // SHORT_BINBYTES
        push(make_string(bytes(u8())));
        break;
      case 0x8d:  // BINUNICODE8
      case 0x8e:  // BINBYTES8
        push(make_string(bytes(uint_le(8))));
        break;
      case ')':  // EMPTY_TUPLE
        push(make(Kind::kTuple));
        break;
      case ']':  // EMPTY_LIST
        push(make(Kind::kList));
        break;
      case '}':  // EMPTY_DICT
        push(make(Kind::kDict));
        break;
      case 't':    // TUPLE
      case 'l':    // LIST
      case 'd': {  // DICT
        std::vector<ValuePtr> items = pop_mark();
        if (op == 'd' && items.size() % 2 != 0) error("DICT with an odd number of items");
        auto v = make(op == 't' ? Kind::kTuple : op == 'l' ? Kind::kList : Kind::kDict);
        v->items = std::move(items);
        push(std::move(v));
        break;
      }
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const size_t n = op - 0x84;
        if (stack_.size() < mark_base() + n) error("pickle stack underflow");
        auto v = make(Kind::kTuple);
        v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(std::move(v));
        break;
      }
      case 'q':  // BINPUT
        memo_put(uint_le(1));
        break;
      case 'r':  // LONG_BINPUT
        memo_put(uint_le(4));
        break;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        break;
      case 'h':  // BINGET
        push(memo_get(uint_le(1)));
        break;
      case 'j':  // LONG_BINGET
        push(memo_get(uint_le(4)));
        break;
      case 's': {  // SETITEM
        ValuePtr value = pop();
        ValuePtr key = pop();
        Value& dict = expect(top(), Kind::kDict, "SETITEM target");
        dict.items.push_back(std::move(key));
        dict.items.push_back(std::move(value));
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<ValuePtr> items = pop_mark();
        if (items.size() % 2 != 0) error("SETITEMS with an odd number of items");
        Value& dict = expect(top(), Kind::kDict, "SETITEMS target");
        for (auto& item : items) dict.items.push_back(std::move(item));
        break;
      }
      case 'a': {  // APPEND
        ValuePtr value = pop();
        expect(top(), Kind::kList, "APPEND target").items.push_back(std::move(value));
        break;
      }
      case 'e': {  // APPENDS
        std::vector<ValuePtr> items = pop_mark();
        Value& list = expect(top(), Kind::kList, "APPENDS target");
        for (auto& item : items) list.items.push_back(std::move(item));
        break;
      }
      case 'c': {  // GLOBAL
        std::string module = line();
        std::string name = line();
        push(resolve_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop();
        ValuePtr module = pop();
        push(resolve_global(expect(module, Kind::kString, "STACK_GLOBAL module").s,
                            expect(name, Kind::kString, "STACK_GLOBAL name").s));
        break;
      }
      case 'R': {  // REDUCE
        ValuePtr args = pop();
        ValuePtr callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD
        ValuePtr state = pop();
        const ValuePtr& target = top();
        // The only BUILD torch.save emits for a state dict sets OrderedDict._metadata,
        // which is not needed: drop it.
        if (target->kind != Kind::kDict) {
          error(std::string("BUILD on a ") + kind_name(target->kind) + " is not supported");
        }
        break;
      }
      case 'Q': {  // BINPERSID
        ValuePtr pid = pop();
        push(persistent_load(pid));
        break;
      }
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        error(std::string("unsupported pickle opcode ") + buf +
              (op >= 0x20 && op < 0x7f ? std::string(" ('") + static_cast<char>(op) + "')" : ""));
      }
    }
  }
}

ValuePtr Unpickler::resolve_global(const std::string& module, const std::string& name) {
  auto v = make(Kind::kGlobal);
  v->s = module + "." + name;
  if (module == "collections" && name == "OrderedDict") {
    v->callable = Callable::kOrderedDict;
    return v;
  }
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") {
      v->callable = Callable::kRebuildTensorV2;
      return v;
    }
    if (name == "_rebuild_parameter") {
      v->callable = Callable::kRebuildParameter;
      return v;
    }
    if (name == "_rebuild_parameter_with_state") {
      v->callable = Callable::kRebuildParameterWithState;
      return v;
    }
  }
  if (module == "torch") {
    for (const auto& st : kStorageTypes) {
      if (name == st.name) {
        v->callable = Callable::kStorageType;
        v->dtype = st.dtype;
        return v;
      }
    }
  }
  std::string shown = v->s;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  error("refusing global '" + shown +
        "' (only dicts of tensors are loaded: OrderedDict, torch._utils._rebuild_tensor_v2, "
        "_rebuild_parameter and torch.*Storage are allowed)");
}

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args_value) {
  const Value& fn = expect(callable, Kind::kGlobal, "REDUCE callable");
  const std::vector<ValuePtr>& args = expect(args_value, Kind::kTuple, "REDUCE arguments").items;
  switch (fn.callable) {
    case Callable::kOrderedDict: {
      auto dict = make(Kind::kDict);
      if (args.empty()) return dict;
      if (args.size() == 1 && args[0]->kind == Kind::kList) {
        for (const auto& pair : args[0]->items) {
          if ((pair->kind != Kind::kTuple && pair->kind != Kind::kList) ||
              pair->items.size() != 2) {
            error("OrderedDict() argument is not a list of pairs");
          }
          dict->items.push_back(pair->items[0]);
          dict->items.push_back(pair->items[1]);
        }
        return dict;
      }
      error("unsupported OrderedDict() arguments");
    }
    case Callable::kRebuildTensorV2: {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.size() != 6 && args.size() != 7) {
        error("_rebuild_tensor_v2 expects 6 or 7 arguments, got " + std::to_string(args.size()));
      }
      const Value& storage = expect(args[0], Kind::kStorage, "_rebuild_tensor_v2 storage");
      const int64_t offset = as_int(args[1], "_rebuild_tensor_v2 storage_offset");
      const std::vector<int64_t> sizes = as_int_tuple(args[2], "_rebuild_tensor_v2 size");
      const std::vector<int64_t> strides = as_int_tuple(args[3], "_rebuild_tensor_v2 stride");
      auto v = make(Kind::kTensor);
      v->tensor = rebuild_tensor(storage, offset, sizes, strides);
      return v;
    }
    case Callable::kRebuildParameter:
    case Callable::kRebuildParameterWithState: {
      // (data, requires_grad, backward_hooks[, state])
      const size_t expected = fn.callable == Callable::kRebuildParameter ? 3 : 4;
      if (args.size() != expected) error(fn.s + ": wrong number of arguments");
      expect(args[0], Kind::kTensor, "parameter data");
      return args[0];
    }
    case Callable::kStorageType:
      break;
  }
  error("'" + fn.s + "' cannot be called");
}

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
  // ('storage', storage_type, key, location, numel)
  const Value& t = expect(pid, Kind::kTuple, "persistent id");
  if (t.items.size() != 5 || t.items[0]->kind != Kind::kString || t.items[0]->s != "storage") {
    error("unsupported persistent id (expected ('storage', type, key, location, numel))");
  }
  const Value& type = expect(t.items[1], Kind::kGlobal, "storage type");
  if (type.callable != Callable::kStorageType) error("'" + type.s + "' is not a storage type");
  const std::string& key = expect(t.items[2], Kind::kString, "storage key").s;
  expect(t.items[3], Kind::kString, "storage location");  // loaded on the CPU regardless
  const int64_t numel = as_int(t.items[4], "storage size");
  if (numel < 0) error("negative storage size");
  if (key.empty() || key.size() > 256) error("invalid storage key");
  auto v = make(Kind::kStorage);
  v->dtype = type.dtype;
  v->s = key;
  v->i = numel;
  return v;
}

torch::Tensor Unpickler::rebuild_tensor(const Value& storage, int64_t offset,
                                        const std::vector<int64_t>& sizes,
                                        const std::vector<int64_t>& strides) {
  const std::string what = "tensor of size " + shape_string(sizes) + ", stride " +
                           shape_string(strides) + ", offset " + std::to_string(offset) +
                           " on storage '" + storage.s + "'";
  if (sizes.size() != strides.size()) error(what + ": size and stride differ in length");
  if (offset < 0) error(what + ": negative storage offset");
  uint64_t numel = 0;
  if (!checked_numel(sizes, &numel)) error(what + ": invalid size");
  for (int64_t st : strides) {
    if (st < 0) error(what + ": negative stride");
  }
  const torch::Tensor base = load_storage_(storage.s, storage.dtype, storage.i);
  if (numel == 0) return torch::empty(sizes, torch::TensorOptions().dtype(storage.dtype));
  // Highest element index touched, overflow-checked.
  uint64_t last = static_cast<uint64_t>(offset);
  for (size_t d = 0; d < sizes.size(); ++d) {
    uint64_t span = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(sizes[d] - 1),
                               static_cast<uint64_t>(strides[d]), &span) ||
        __builtin_add_overflow(last, span, &last)) {
      error(what + ": extent overflows");
    }
  }
  const auto storage_numel = static_cast<uint64_t>(storage.i);
  if (last >= storage_numel) {
    error(what + " reaches element " + std::to_string(last) + " but the storage holds only " +
          std::to_string(storage_numel) + " elements");
  }
  uint64_t nbytes = 0;
  if (numel > storage_numel &&
      (__builtin_mul_overflow(numel, c10::elementSize(storage.dtype), &nbytes) ||
       nbytes > kMaxExpandedBytes)) {
    error(what + " repeats storage elements and would expand to more than " +
          std::to_string(kMaxExpandedBytes >> 20) + " MiB");
  }
  torch::Tensor t = base.as_strided(sizes, strides, offset);
  if (offset == 0 && numel == storage_numel && t.is_contiguous()) return t;  // whole storage
  // Views are copied: all copies together may exceed the storages they view only by
  // kMaxExpandedBytes (genuine views, e.g. slices of a shared storage, partition it), so
  // that a small pickle cannot copy one big storage over and over.
  if (storages_seen_.insert(storage.s).second) storage_bytes_ += base.nbytes();
  nbytes = numel * c10::elementSize(storage.dtype);  // <= kMaxExpandedBytes or the storage
  copied_bytes_ += nbytes;
  if (copied_bytes_ > storage_bytes_ + kMaxExpandedBytes) {
    error(what + ": the tensor views of this checkpoint would copy " +
          std::to_string(copied_bytes_) + " bytes, more than their storages (" +
          std::to_string(storage_bytes_) + " bytes) plus " +
          std::to_string(kMaxExpandedBytes >> 20) + " MiB");
  }
  return t.clone(at::MemoryFormat::Contiguous);
}

// ---------------------------------------------------------------------------------------
// Flattening the unpickled object into a StateDict.

void flatten_dict(const std::string& path, const Value& dict, const std::string& prefix, int depth,
                  StateDict* out) {
  if (depth > kMaxDictNesting) fail(path, "dicts nested too deeply");
  // Python dict semantics: a repeated key keeps its last value.
  std::map<std::string, const Value*> entries;
  for (size_t k = 0; k + 1 < dict.items.size(); k += 2) {
    const Value& key = *dict.items[k];
    std::string name;
    if (key.kind == Kind::kString) {
      name = key.s;
    } else if (key.kind == Kind::kInt) {
      name = std::to_string(key.i);
    } else {
      continue;  // not a state-dict entry
    }
    entries[name] = dict.items[k + 1].get();
  }
  for (const auto& [name, value] : entries) {
    const std::string full = depth == 0 ? name : prefix + "." + name;
    if (value->kind == Kind::kTensor) {
      if (!out->emplace(full, value->tensor).second) {
        fail(path, "key '" + full + "' occurs twice after flattening nested dicts");
      }
    } else if (value->kind == Kind::kDict) {
      flatten_dict(path, *value, full, depth + 1, out);
    }
    // Other leaves (epoch numbers, strings, lists ...) are not tensors: skipped.
  }
}

StateDict read_torch_zip(const std::string& path, caffe2::serialize::PyTorchStreamReader& reader) {
  // Record names are relative to the archive folder (the reader adds it).
  if (!reader.hasRecord("data.pkl")) {
    if (reader.hasRecord("constants.pkl")) {
      fail(path,
           "a TorchScript archive (torch.jit.save) is not a checkpoint; save the "
           "state_dict with torch.save");
    }
    fail(path, "no data.pkl record: not a torch.save checkpoint");
  }
  if (reader.hasRecord("byteorder")) {
    auto [ptr, n] = reader.getRecord("byteorder");
    const std::string order(static_cast<const char*>(ptr.get()), n);
    if (order != "little") fail(path, "unsupported byte order '" + order + "'");
  }
  std::map<std::string, torch::Tensor> storages;
  StorageLoader load_storage = [&](const std::string& key, c10::ScalarType dtype,
                                   int64_t numel) -> torch::Tensor {
    auto it = storages.find(key);
    if (it != storages.end()) {
      const torch::Tensor& t = it->second;
      if (t.scalar_type() != dtype || t.numel() != numel) {
        fail(path, "storage '" + key + "' is used with two different types or sizes");
      }
      return t;
    }
    const std::string record = "data/" + key;
    if (!reader.hasRecord(record)) fail(path, "storage record '" + record + "' is missing");
    const size_t elem = c10::elementSize(dtype);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), uint64_t{elem}, &nbytes)) {
      fail(path, "storage '" + key + "' is too large");
    }
    auto [ptr, size] = reader.getRecord(record);
    if (size < nbytes) {
      fail(path, "storage '" + key + "' holds " + std::to_string(size) + " bytes but " +
                     std::to_string(numel) + " elements of " + std::string(c10::toString(dtype)) +
                     " need " + std::to_string(nbytes) + " (truncated?)");
    }
    const auto load_dtype = dtype == c10::ScalarType::Bool ? c10::ScalarType::Byte : dtype;
    torch::Tensor t;
    if (numel == 0) {
      t = torch::empty({0}, torch::TensorOptions().dtype(load_dtype));
    } else if (reinterpret_cast<uintptr_t>(ptr.get()) % elem == 0) {
      auto holder = std::make_shared<at::DataPtr>(std::move(ptr));
      t = torch::from_blob(
          holder->get(), {numel}, [holder](void*) {}, torch::TensorOptions().dtype(load_dtype));
    } else {
      t = torch::empty({numel}, torch::TensorOptions().dtype(load_dtype));
      std::memcpy(t.data_ptr(), ptr.get(), nbytes);
    }
    if (dtype == c10::ScalarType::Bool) t = t.ne(0);  // any non-zero byte is true
    storages.emplace(key, t);
    return t;
  };

  auto [pkl, pkl_size] = reader.getRecord("data.pkl");
  Unpickler unpickler(path, static_cast<const char*>(pkl.get()), pkl_size, load_storage);
  ValuePtr root = unpickler.run();
  if (root->kind != Kind::kDict) {
    fail(path, std::string("the checkpoint holds a ") + kind_name(root->kind) +
                   ", expected a dict of tensors");
  }
  // SAM 2.1 layout: {"model": state_dict}.
  if (root->items.size() == 2 && root->items[0]->kind == Kind::kString &&
      root->items[0]->s == "model" && root->items[1]->kind == Kind::kDict) {
    root = root->items[1];
  }
  StateDict out;
  flatten_dict(path, *root, "", 0, &out);
  return out;
}

// ---------------------------------------------------------------------------------------
// safetensors dtypes.

struct SafetensorsDtype {
  const char* name;
  c10::ScalarType dtype;
};
constexpr SafetensorsDtype kSafetensorsDtypes[] = {
    {"BOOL", c10::ScalarType::Bool},        {"U8", c10::ScalarType::Byte},
    {"I8", c10::ScalarType::Char},          {"I16", c10::ScalarType::Short},
    {"I32", c10::ScalarType::Int},          {"I64", c10::ScalarType::Long},
    {"F16", c10::ScalarType::Half},         {"BF16", c10::ScalarType::BFloat16},
    {"F32", c10::ScalarType::Float},        {"F64", c10::ScalarType::Double},
    {"C64", c10::ScalarType::ComplexFloat},
};

const SafetensorsDtype* find_safetensors_dtype(const std::string& name) {
  for (const auto& d : kSafetensorsDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const char* safetensors_dtype_name(c10::ScalarType dtype) {
  for (const auto& d : kSafetensorsDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return nullptr;
}

}  // namespace

// -----------------------------------------------------------------------------------------

StateDict load_torch_zip(const std::string& path) {
  InputFile file(path);
  if (!kLittleEndian) fail(path, "loading checkpoints needs a little-endian machine");
  const std::string head = file.read(0, std::min<uint64_t>(file.size(), 16));
  if (is_legacy_torch_save(head)) fail(path, kLegacyFormat);
  // Rejects records larger than the file, and what would make the reader's constructor throw.
  check_torch_zip_layout(path, file, scan_zip_directory(path, file));
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return read_torch_zip(path, reader);
  } catch (const CheckpointError&) {
    throw;
  } catch (const c10::Error& e) {
    fail(path, std::string("not a valid torch zip archive: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(path, std::string("not a valid torch zip archive: ") + e.what());
  }
}

StateDict load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  InputFile file(path);
  if (!kLittleEndian) fail(path, "loading checkpoints needs a little-endian machine");
  if (metadata) metadata->clear();
  const uint64_t size = file.size();
  if (size < 8) {
    fail(path, "truncated safetensors file: " + std::to_string(size) +
                   " bytes, too short for the 8-byte header length");
  }
  const uint64_t header_len = le64(bytes_of(file.read(0, 8)));
  if (header_len > size - 8) {
    fail(path, "safetensors header length " + std::to_string(header_len) +
                   " exceeds the file size " + std::to_string(size) + " (truncated?)");
  }
  if (header_len > kMaxSafetensorsHeader) {
    fail(path, "safetensors header length " + std::to_string(header_len) + " is too large");
  }
  json header;
  try {
    header = json::parse(file.read(8, header_len));
  } catch (const json::exception& e) {
    fail(path, std::string("invalid safetensors JSON header: ") + e.what());
  }
  if (!header.is_object()) fail(path, "safetensors header is not a JSON object");

  struct Entry {
    std::string name;
    c10::ScalarType dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0;
    uint64_t nbytes = 0;
  };
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(path, "safetensors __metadata__ is not an object");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          fail(path, "safetensors __metadata__ value of '" + mkey + "' is not a string");
        }
        if (metadata) (*metadata)[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    // (clang's C++17 cannot capture a structured binding implicitly)
    auto bad = [&, &key = key](const std::string& why) {
      fail(path, "tensor '" + key + "': " + why);
    };
    if (!value.is_object()) bad("header entry is not an object");
    Entry entry;
    entry.name = key;
    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string()) bad("missing dtype");
    const SafetensorsDtype* dtype = find_safetensors_dtype(dtype_it->get<std::string>());
    if (!dtype) bad("unsupported dtype '" + dtype_it->get<std::string>() + "'");
    entry.dtype = dtype->dtype;
    const auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array()) bad("missing shape");
    if (shape_it->size() > kMaxTensorDims) bad("too many dimensions");
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        bad("invalid shape " + shape_it->dump());
      }
      entry.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    const auto offsets_it = value.find("data_offsets");
    if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      bad("missing or invalid data_offsets");
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    uint64_t numel = 0;
    if (!checked_numel(entry.shape, &numel) ||
        __builtin_mul_overflow(numel, uint64_t{c10::elementSize(entry.dtype)}, &entry.nbytes)) {
      bad("shape " + shape_string(entry.shape) + " is too large");
    }
    if (begin > end || end > data_size) {
      bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
          "] out of range (the data section holds " + std::to_string(data_size) +
          " bytes; truncated?)");
    }
    if (end - begin != entry.nbytes) {
      bad("data_offsets span " + std::to_string(end - begin) + " bytes but shape " +
          shape_string(entry.shape) + " of " + dtype->name + " needs " +
          std::to_string(entry.nbytes));
    }
    entry.begin = begin;
    entries.push_back(std::move(entry));
  }

  StateDict out;
  for (const Entry& entry : entries) {
    const bool is_bool = entry.dtype == c10::ScalarType::Bool;
    torch::Tensor t = torch::empty(
        entry.shape, torch::TensorOptions().dtype(is_bool ? c10::ScalarType::Byte : entry.dtype));
    file.read_into(data_start + entry.begin, t.data_ptr(), entry.nbytes);
    if (is_bool) t = t.ne(0);
    out.emplace(entry.name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  if (!kLittleEndian) throw Error(path + ": writing safetensors needs a little-endian machine");
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  data.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw Error(path + ": '__metadata__' is not a valid tensor name");
    if (!tensor.defined()) throw Error(path + ": tensor '" + name + "' is undefined");
    const char* dtype = safetensors_dtype_name(tensor.scalar_type());
    if (!dtype) {
      throw Error(path + ": tensor '" + name + "' has dtype " +
                  std::string(c10::toString(tensor.scalar_type())) +
                  ", which safetensors cannot store here");
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    json entry = json::object();
    entry["dtype"] = dtype;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = json::array({offset, offset + nbytes});
    header[name] = std::move(entry);
    offset += nbytes;
    data.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(path + ": cannot encode the safetensors header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open the file for writing");
  unsigned char len[8];
  for (int k = 0; k < 8; ++k) len[k] = static_cast<unsigned char>(text.size() >> (8 * k));
  out.write(reinterpret_cast<const char*>(len), sizeof len);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const torch::Tensor& t : data) {
    out.write(static_cast<const char*>(t.data_ptr()),
              static_cast<std::streamsize>(t.numel() * t.element_size()));
  }
  out.close();
  if (out.fail()) throw Error(path + ": writing the file failed");
}

StateDict load_state_dict(const std::string& path) {
  InputFile file(path);
  const uint64_t size = file.size();
  if (size == 0) fail(path, std::string(kUnrecognisedFormat) + ": the file is empty");
  const std::string head = file.read(0, std::min<uint64_t>(size, 16));
  if (head.size() >= 4 &&
      (head.compare(0, 4, "PK\x03\x04") == 0 || head.compare(0, 4, "PK\x05\x06") == 0)) {
    return load_torch_zip(path);
  }
  if (is_legacy_torch_save(head)) fail(path, kLegacyFormat);
  if (size >= 9) {
    const uint64_t header_len = le64(bytes_of(head));
    if (header_len > 0 && header_len <= size - 8 && file.read(8, 1) == "{") {
      return load_safetensors(path);
    }
  }
  fail(path, kUnrecognisedFormat);
}

}  // namespace sam3
