// Tests of sam3::load_state_dict / load_torch_zip / load_safetensors / save_safetensors:
// the parity fixtures (SAM 3 flat dict with complex64 buffers, SAM 2.1 {"model": ...}
// wrapper, SAM 1 OrderedDict with _metadata), hand-made torch.save archives (views,
// offsets, nesting, every storage type) and hostile / broken files, which must all end
// in a CheckpointError and never crash.
#include "sam3/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures.h"
#include "sam3/errors.h"

namespace {

using sam3::CheckpointError;
using sam3::StateDict;
using sam3::test::fixture_path;
using sam3::test::read_file;
using sam3::test::temp_dir;
using sam3::test::write_file;

// Runs `fn`, expects a CheckpointError and returns its message ("" if none was thrown).
template <typename Fn>
std::string checkpoint_error(Fn&& fn) {
  try {
    fn();
  } catch (const CheckpointError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected CheckpointError, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected CheckpointError, nothing was thrown";
  return "";
}

#define EXPECT_CHECKPOINT_ERROR(stmt, substr)                               \
  do {                                                                      \
    const std::string msg_ = checkpoint_error([&] { (void)(stmt); });       \
    EXPECT_NE(msg_.find(substr), std::string::npos) << "message: " << msg_; \
  } while (0)

c10::ScalarType dtype_from_name(const std::string& name) {
  static const std::map<std::string, c10::ScalarType> kTypes = {
      {"float32", torch::kFloat},
      {"float64", torch::kDouble},
      {"float16", torch::kHalf},
      {"bfloat16", torch::kBFloat16},
      {"complex64", torch::kComplexFloat},
      {"int64", torch::kLong},
      {"int32", torch::kInt},
      {"uint8", torch::kByte},
      {"bool", torch::kBool},
  };
  auto it = kTypes.find(name);
  EXPECT_NE(it, kTypes.end()) << "unknown dtype in config.json: " << name;
  return it == kTypes.end() ? torch::kFloat : it->second;
}

// Checks a SAM 3 fixture checkpoint against its config.json:checkpoint_keys.
void check_sam3_fixture(const std::string& dir) {
  const auto config = nlohmann::json::parse(read_file(fixture_path(dir + "/config.json")));
  const StateDict sd = sam3::load_state_dict(fixture_path(dir + "/checkpoint.pt"));
  const auto& keys = config.at("checkpoint_keys");
  EXPECT_EQ(sd.size(), keys.size());
  int complex_count = 0;
  int expected_complex = 0;
  for (const auto& [key, info] : keys.items()) {
    if (info.at("dtype") == "complex64") ++expected_complex;
    auto it = sd.find(key);
    if (it == sd.end()) {
      ADD_FAILURE() << "missing key " << key;
      continue;
    }
    const torch::Tensor& t = it->second;
    EXPECT_EQ(t.sizes().vec(), info.at("shape").get<std::vector<int64_t>>()) << key;
    EXPECT_EQ(t.scalar_type(), dtype_from_name(info.at("dtype").get<std::string>())) << key;
    EXPECT_TRUE(t.is_contiguous()) << key;
    EXPECT_TRUE(t.device().is_cpu()) << key;
    EXPECT_FALSE(t.requires_grad()) << key;
    if (t.is_complex()) {
      ++complex_count;
      EXPECT_NE(key.find("freqs_cis"), std::string::npos) << key;
      EXPECT_TRUE(torch::isfinite(torch::view_as_real(t)).all().item<bool>()) << key;
      EXPECT_LT((t.abs() - 1).abs().max().item<float>(), 1e-5f) << key;
      // Position 0 of a RoPE table has angle 0.
      const auto z = t.reshape({-1})[0].item<c10::complex<float>>();
      EXPECT_FLOAT_EQ(z.real(), 1.0f) << key;
      EXPECT_FLOAT_EQ(z.imag(), 0.0f) << key;
    } else if (t.is_floating_point()) {
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << key;
    }
  }
  EXPECT_GT(expected_complex, 0);  // the RoPE freqs_cis buffers
  EXPECT_EQ(complex_count, expected_complex);
}

// Builds pickle protocol 2 streams in the form torch.save writes them.
class Pickle {
 public:
  Pickle() { s_ += "\x80\x02"; }
  Pickle& op(char c) {
    s_ += c;
    return *this;
  }
  Pickle& raw(const std::string& bytes) {
    s_ += bytes;
    return *this;
  }
  Pickle& mark() { return op('('); }
  Pickle& str(const std::string& v) {
    op('X');
    le(v.size(), 4);
    s_ += v;
    return *this;
  }
  Pickle& integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint64_t>(v), 4);
    } else {
      op('\x8a');
      s_ += '\x08';
      le(static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    s_ += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  Pickle& int_tuple(const std::vector<int64_t>& values) {
    mark();
    for (int64_t v : values) integer(v);
    return op('t');
  }
  Pickle& empty_dict() { return op('}'); }
  Pickle& setitem() { return op('s'); }
  Pickle& stop() { return op('.'); }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride,
  //                    False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, int64_t numel,
                 int64_t offset, const std::vector<int64_t>& size,
                 const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark().str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel);
    op('t').op('Q');
    integer(offset).int_tuple(size).int_tuple(stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
  const std::string& bytes() const { return s_; }

 private:
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) s_ += static_cast<char>((v >> (8 * k)) & 0xff);
  }
  std::string s_;
};

// A string literal with embedded NULs, without its terminator.
template <size_t N>
std::string bin(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

std::string tensor_bytes(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

// Writes a torch.save-style zip archive with the given data.pkl and data/<key> records.
std::string make_archive(const std::string& pkl,
                         const std::map<std::string, std::string>& storages = {},
                         const std::string& name = "crafted.pt") {
  const std::string path = temp_dir() + "/" + name;
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (const auto& [key, bytes] : storages) {
    writer.writeRecord("data/" + key, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return path;
}

// A dict {"w": <float tensor>} whose tensor has the given geometry over a storage of
// `numel` floats (record holding `record_numel` floats).
std::string make_single_tensor_archive(int64_t numel, int64_t record_numel, int64_t offset,
                                       const std::vector<int64_t>& size,
                                       const std::vector<int64_t>& stride) {
  Pickle p;
  p.empty_dict().str("w").tensor("FloatStorage", "0", numel, offset, size, stride);
  p.setitem().stop();
  return make_archive(p.bytes(), {{"0", tensor_bytes(torch::zeros({record_numel}))}});
}

uint64_t read_le64(const std::string& s, size_t pos) {
  uint64_t v = 0;
  for (int k = 0; k < 8; ++k) v |= uint64_t{static_cast<unsigned char>(s[pos + k])} << (8 * k);
  return v;
}

std::string safetensors_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[k] = static_cast<char>((header.size() >> (8 * k)) & 0xff);
  return out + header + data;
}

// ---------------------------------------------------------------------------------------
// Fixture checkpoints.

TEST(CheckpointTest, LoadsSam3FixtureFlatDict) {
  check_sam3_fixture("sam3/tiny-a");
  // Values checked against the raw little-endian bytes of the archive.
  const StateDict sd = sam3::load_torch_zip(fixture_path("sam3/tiny-a/checkpoint.pt"));
  const torch::Tensor& e = sd.at("tracker.no_mem_embed");
  ASSERT_EQ(e.sizes().vec(), (std::vector<int64_t>{1, 1, 64}));
  EXPECT_FLOAT_EQ(e[0][0][0].item<float>(), 1.0501757860183716f);
  EXPECT_FLOAT_EQ(e[0][0][1].item<float>(), -0.9747886061668396f);
  EXPECT_FLOAT_EQ(e[0][0][2].item<float>(), 0.7188065052032471f);
  EXPECT_NEAR(e.sum().item<double>(), 2.48443261, 1e-5);
  EXPECT_NEAR(e.abs().sum().item<double>(), 24.5037185, 1e-4);
}

TEST(CheckpointTest, LoadsSam3TinyBFixture) { check_sam3_fixture("sam3/tiny-b"); }

TEST(CheckpointTest, LoadsSam21FixtureAndUnwrapsModel) {
  const StateDict sd = sam3::load_state_dict(
      fixture_path("sam2.1/sam2.1_tiny_r256_e32_d128/sam2.1_tiny_r256_e32_d128.pt"));
  EXPECT_EQ(sd.size(), 324u);
  for (const auto& [key, t] : sd) {
    EXPECT_NE(key.rfind("model.", 0), 0u) << key;
    EXPECT_EQ(t.scalar_type(), torch::kFloat) << key;
    EXPECT_TRUE(t.is_contiguous()) << key;
  }
  ASSERT_EQ(sd.count("no_mem_embed"), 1u);
  const torch::Tensor& e = sd.at("no_mem_embed");
  ASSERT_EQ(e.sizes().vec(), (std::vector<int64_t>{1, 1, 128}));
  EXPECT_FLOAT_EQ(e[0][0][0].item<float>(), 0.14530277252197266f);
  EXPECT_FLOAT_EQ(e[0][0][1].item<float>(), -0.4907698333263397f);
  EXPECT_NEAR(e.sum().item<double>(), -3.93401864, 1e-5);
  EXPECT_EQ(sd.at("maskmem_tpos_enc").sizes().vec(), (std::vector<int64_t>{7, 1, 1, 32}));
  EXPECT_EQ(sd.count("image_encoder.trunk.pos_embed"), 1u);
  EXPECT_EQ(sd.count("sam_mask_decoder.pred_obj_score_head.layers.0.weight"), 1u);
}

TEST(CheckpointTest, LoadsSam1FixtureOrderedDictWithMetadata) {
  const StateDict sd =
      sam3::load_state_dict(fixture_path("sam1/sam1_tiny_r256_e64_d4/sam1_tiny_r256_e64_d4.pth"));
  EXPECT_EQ(sd.size(), 202u);
  const torch::Tensor& p = sd.at("image_encoder.pos_embed");
  ASSERT_EQ(p.sizes().vec(), (std::vector<int64_t>{1, 16, 16, 64}));
  EXPECT_TRUE(p.is_contiguous());
  EXPECT_FLOAT_EQ(p[0][0][0][0].item<float>(), 0.09050342440605164f);
  EXPECT_FLOAT_EQ(p[0][0][0][1].item<float>(), -0.06205049157142639f);
  EXPECT_NEAR(p.sum().item<double>(), 7.45581415, 1e-4);
  EXPECT_NEAR(p.abs().sum().item<double>(), 1314.93356, 1e-2);
  EXPECT_EQ(sd.count("pixel_mean"), 0u);  // non-persistent buffer
  for (const auto& [key, t] : sd) EXPECT_EQ(key.find("_metadata"), std::string::npos) << key;
}

// ---------------------------------------------------------------------------------------
// Hand-made archives.

TEST(CheckpointTest, HandMadeArchiveViewsOffsetsNestingAndStorageTypes) {
  const torch::Tensor base = torch::arange(24, torch::kFloat);
  const torch::Tensor longs =
      torch::tensor({int64_t{-5}, int64_t{1} << 40, int64_t{7}}, torch::kLong);
  const torch::Tensor bools = torch::tensor({1, 0, 2, 0}, torch::kByte);  // 2: any non-zero
  const torch::Tensor cplx =
      torch::view_as_complex(torch::arange(8, torch::kFloat).reshape({4, 2}));
  const torch::Tensor halves = torch::tensor({0.5, -2.0, 1024.0}, torch::kHalf);
  const torch::Tensor bf16 = torch::tensor({1.5, -3.0}, torch::kBFloat16);
  const torch::Tensor doubles = torch::tensor({1e-300, 3.25}, torch::kDouble);
  const torch::Tensor ints = torch::tensor({-7, 9}, torch::kInt);
  const torch::Tensor shorts = torch::tensor({-300, 300}, torch::kShort);
  const torch::Tensor chars = torch::tensor({-100, 100}, torch::kChar);
  const torch::Tensor cdoubles = torch::tensor({1.0, 2.0, -3.0, 4.0}, torch::kDouble);

  Pickle p;
  p.empty_dict();
  // Whole storage, contiguous.
  p.str("full").tensor("FloatStorage", "0", 24, 0, {2, 3, 4}, {12, 4, 1}).setitem();
  // Offset view of the same storage.
  p.str("slice").tensor("FloatStorage", "0", 24, 5, {2, 3}, {3, 1}).setitem();
  // Transposed (non-contiguous) view.
  p.str("transposed").tensor("FloatStorage", "0", 24, 0, {4, 6}, {1, 4}).setitem();
  // Expanded view (stride 0).
  p.str("expanded").tensor("FloatStorage", "0", 24, 2, {3, 2}, {0, 1}).setitem();
  p.str("empty").tensor("FloatStorage", "0", 24, 0, {0, 5}, {5, 1}).setitem();
  p.str("scalar").tensor("FloatStorage", "0", 24, 23, {}, {}).setitem();
  // Non-tensor leaves are skipped.
  p.str("epoch").integer(7).setitem();
  p.str("note").str("hello").setitem();
  p.str("flag").op('\x88').setitem();
  p.str("ratio").op('G').raw(bin("\x3f\xf8\0\0\0\0\0\0")).setitem();
  p.str("none").op('N').setitem();
  p.str("list").op(']').integer(1).op('a').setitem();
  // A nested dict (flattened with '.') holding every storage type.
  p.str("nested").empty_dict();
  p.str("long").tensor("LongStorage", "1", 3, 0, {3}, {1}).setitem();
  p.str("bool").tensor("BoolStorage", "2", 4, 0, {2, 2}, {2, 1}).setitem();
  p.str("complex").tensor("ComplexFloatStorage", "3", 4, 0, {4}, {1}).setitem();
  p.str("half").tensor("HalfStorage", "4", 3, 0, {3}, {1}).setitem();
  p.str("bf16").tensor("BFloat16Storage", "5", 2, 0, {2}, {1}).setitem();
  p.str("double").tensor("DoubleStorage", "6", 2, 0, {2}, {1}).setitem();
  p.str("int").tensor("IntStorage", "7", 2, 0, {2}, {1}).setitem();
  p.str("short").tensor("ShortStorage", "8", 2, 0, {2}, {1}).setitem();
  p.str("char").tensor("CharStorage", "9", 2, 0, {2}, {1}).setitem();
  p.str("byte").tensor("ByteStorage", "11", 4, 1, {3}, {1}).setitem();
  p.str("cdouble").tensor("ComplexDoubleStorage", "10", 2, 0, {2}, {1}).setitem();
  // nn.Parameter, as pickled by torch.save(module) state dicts of some trainers.
  p.str("param").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("FloatStorage", "0", 24, 0, {24}, {1}).op('\x89');
  p.global("collections", "OrderedDict").op(')').op('R').op('t').op('R').setitem();
  p.str("deeper").empty_dict().integer(3).tensor("FloatStorage", "0", 24, 4, {1}, {1});
  p.setitem().setitem();  // {3: tensor} -> "nested.deeper.3"
  p.setitem();            // "nested"
  p.stop();
  const std::string path = make_archive(p.bytes(), {{"0", tensor_bytes(base)},
                                                    {"1", tensor_bytes(longs)},
                                                    {"2", tensor_bytes(bools)},
                                                    {"3", tensor_bytes(cplx)},
                                                    {"4", tensor_bytes(halves)},
                                                    {"5", tensor_bytes(bf16)},
                                                    {"6", tensor_bytes(doubles)},
                                                    {"7", tensor_bytes(ints)},
                                                    {"8", tensor_bytes(shorts)},
                                                    {"9", tensor_bytes(chars)},
                                                    {"10", tensor_bytes(cdoubles)},
                                                    {"11", tensor_bytes(bools)}});
  const StateDict sd = sam3::load_state_dict(path);

  std::vector<std::string> names;
  for (const auto& [key, t] : sd) {
    names.push_back(key);
    EXPECT_TRUE(t.is_contiguous()) << key;
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "empty", "expanded", "full", "nested.bf16", "nested.bool", "nested.byte",
                       "nested.cdouble", "nested.char", "nested.complex", "nested.deeper.3",
                       "nested.double", "nested.half", "nested.int", "nested.long", "nested.param",
                       "nested.short", "scalar", "slice", "transposed"}));
  EXPECT_TRUE(torch::equal(sd.at("full"), base.reshape({2, 3, 4})));
  EXPECT_TRUE(torch::equal(sd.at("slice"), base.slice(0, 5, 11).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(sd.at("transposed"), base.reshape({6, 4}).t()));
  EXPECT_TRUE(torch::equal(sd.at("expanded"), base.slice(0, 2, 4).expand({3, 2})));
  EXPECT_EQ(sd.at("empty").sizes().vec(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(sd.at("scalar").dim(), 0);
  EXPECT_EQ(sd.at("scalar").item<float>(), 23.0f);
  EXPECT_TRUE(torch::equal(sd.at("nested.param"), base));
  EXPECT_TRUE(torch::equal(sd.at("nested.long"), longs));
  EXPECT_TRUE(torch::equal(sd.at("nested.bool"),
                           torch::tensor({true, false, true, false}).reshape({2, 2})));
  EXPECT_TRUE(torch::equal(sd.at("nested.byte"), bools.slice(0, 1)));
  EXPECT_TRUE(torch::equal(sd.at("nested.complex"), cplx));
  EXPECT_TRUE(torch::equal(sd.at("nested.half"), halves));
  EXPECT_TRUE(torch::equal(sd.at("nested.bf16"), bf16));
  EXPECT_TRUE(torch::equal(sd.at("nested.double"), doubles));
  EXPECT_TRUE(torch::equal(sd.at("nested.int"), ints));
  EXPECT_TRUE(torch::equal(sd.at("nested.short"), shorts));
  EXPECT_TRUE(torch::equal(sd.at("nested.char"), chars));
  EXPECT_TRUE(
      torch::equal(sd.at("nested.cdouble"), torch::view_as_complex(cdoubles.reshape({2, 2}))));
  EXPECT_TRUE(torch::equal(sd.at("nested.deeper.3"), base.slice(0, 4, 5)));
}

TEST(CheckpointTest, ModelWrapperIsUnwrappedOnlyWhenAlone) {
  const std::string storage = tensor_bytes(torch::ones({2}));
  Pickle wrapped;
  wrapped.empty_dict().str("model").empty_dict();
  wrapped.str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).setitem().setitem().stop();
  EXPECT_EQ(sam3::load_torch_zip(make_archive(wrapped.bytes(), {{"0", storage}})).count("w"), 1u);

  Pickle with_epoch;
  with_epoch.empty_dict().str("model").empty_dict();
  with_epoch.str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).setitem().setitem();
  with_epoch.str("epoch").integer(12).setitem().stop();
  const StateDict sd = sam3::load_torch_zip(make_archive(with_epoch.bytes(), {{"0", storage}}));
  EXPECT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd.count("model.w"), 1u);
}

TEST(CheckpointTest, ProtocolFourOpcodesAreAccepted) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, TUPLE1..3, LONG_BINGET.
  // clang-format off
  std::string s = bin("\x80\x04\x95\0\0\0\0\0\0\0\0");  // PROTO 4, FRAME
  s += bin("}\x94(");                                 // {} memo 0, MARK
  s += bin("\x8c\x01w\x94");                          // 'w' memo 1
  s += bin("\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94");      // 2, 3, 4
  s += bin("((\x8c\x07storage\x94\x8c\x05torch\x94\x8c\x0c" "FloatStorage\x94\x93\x94");  // 5-8
  s += bin("\x8c\x01" "0\x94\x8c\x03" "cpu\x94K\x04t\x94Q");  // 9, 10, pid 11, BINPERSID
  s += bin("K\x00K\x02K\x02\x86\x94K\x02K\x01\x86\x94\x89");  // 0, (2,2) 12, (2,1) 13, False
  s += bin("\x8c\x0b" "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94");  // 14-17
  s += bin("t\x94R\x94");                             // args 18, tensor 19
  s += bin("\x8c\x01v\x94j\x04\x00\x00\x00");        // 'v' 20, LONG_BINGET 4
  s += bin("((h\x05h\x08h\x09h\x0aK\x04t\x94Q");       // pid from the memo
  s += bin("K\x02K\x02\x85K\x01\x85\x89h\x10)Rt\x94R");  // offset 2, (2,), (1,)
  s += bin("u.");
  // clang-format on
  const StateDict sd =
      sam3::load_torch_zip(make_archive(s, {{"0", tensor_bytes(torch::arange(4.0f))}}));
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_TRUE(torch::equal(sd.at("w"), torch::arange(4.0f).reshape({2, 2})));
  EXPECT_TRUE(torch::equal(sd.at("v"), torch::arange(2.0f, 4.0f)));
}

// ---------------------------------------------------------------------------------------
// safetensors.

TEST(CheckpointTest, SafetensorsRoundTripEveryDtype) {
  torch::manual_seed(0);
  StateDict in;
  in["bool"] = torch::rand({3, 5}) > 0.5;
  in["u8"] = torch::randint(0, 256, {4, 3}, torch::kByte);
  in["i8"] = torch::randint(-128, 128, {7}, torch::kChar);
  in["i16"] = torch::randint(-30000, 30000, {2, 2, 2}, torch::kShort);
  in["i32"] = torch::randint(-100000, 100000, {6}, torch::kInt);
  in["i64"] = torch::tensor({-(int64_t{1} << 50), int64_t{3}, int64_t{1} << 62}, torch::kLong);
  in["f16"] = torch::randn({5, 3}).to(torch::kHalf);
  in["bf16"] = torch::randn({3, 5}).to(torch::kBFloat16);
  in["f32"] = torch::randn({2, 3, 4});
  in["f64"] = torch::randn({9}, torch::kDouble);
  in["c64"] = torch::randn({4, 3}, torch::kComplexFloat);
  in["scalar"] = torch::tensor(3.5f);
  in["empty"] = torch::zeros({0, 4});
  in["transposed"] = torch::arange(12, torch::kFloat).reshape({3, 4}).t();  // non-contiguous
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcødé"}};
  const std::string path = temp_dir() + "/all.safetensors";
  sam3::save_safetensors(path, in, meta);

  const std::string bytes = read_file(path);
  const uint64_t header_len = read_le64(bytes, 0);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');

  std::map<std::string, std::string> meta_out = {{"stale", "x"}};
  const StateDict out = sam3::load_safetensors(path, &meta_out);
  EXPECT_EQ(meta_out, meta);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [key, t] : in) {
    ASSERT_EQ(out.count(key), 1u) << key;
    const torch::Tensor& r = out.at(key);
    EXPECT_EQ(r.scalar_type(), t.scalar_type()) << key;
    EXPECT_EQ(r.sizes(), t.sizes()) << key;
    EXPECT_TRUE(r.is_contiguous()) << key;
    EXPECT_TRUE(torch::equal(r, t)) << key;
  }
  // load_state_dict recognises the format by content, not by name.
  const std::string renamed = temp_dir() + "/weights.bin";
  write_file(renamed, bytes);
  EXPECT_EQ(sam3::load_state_dict(renamed).size(), in.size());
}

TEST(CheckpointTest, SafetensorsWithoutMetadataHasNoMetadataEntry) {
  const std::string path = temp_dir() + "/plain.safetensors";
  sam3::save_safetensors(path, {{"x", torch::ones({2})}});
  const std::string bytes = read_file(path);
  EXPECT_EQ(bytes.find("__metadata__"), std::string::npos);
  std::map<std::string, std::string> meta;
  EXPECT_TRUE(torch::equal(sam3::load_safetensors(path, &meta).at("x"), torch::ones({2})));
  EXPECT_TRUE(meta.empty());
}

TEST(CheckpointTest, ReadsExpectedSafetensorsFixture) {
  const std::string path = fixture_path("sam3/tiny-a/expected.safetensors");
  std::map<std::string, std::string> meta;
  const StateDict sd = sam3::load_safetensors(path, &meta);
  EXPECT_EQ(meta["config"], "tiny-a");
  std::map<c10::ScalarType, int> counts;
  for (const auto& [key, t] : sd) counts[t.scalar_type()]++;
  EXPECT_EQ(sd.size(), 164u);
  EXPECT_EQ(counts[torch::kFloat], 118);
  EXPECT_EQ(counts[torch::kByte], 16);
  EXPECT_EQ(counts[torch::kInt], 15);
  EXPECT_EQ(counts[torch::kChar], 15);
  EXPECT_EQ(sd.at("case.batch.batch0.low_res_masks").sizes().vec(),
            (std::vector<int64_t>{3, 96, 96}));
  EXPECT_EQ(sd.at("case.batch.batch0.masks").sizes().vec(), (std::vector<int64_t>{64800}));
  EXPECT_EQ(sd.at("case.box_two_points.decoder_low_res_clamped_index").sizes().vec(),
            (std::vector<int64_t>{0}));
  EXPECT_EQ(sd.at("case.mask_only.postprocess_fill_map").sizes().vec(),
            (std::vector<int64_t>{1, 3, 96, 96}));
  EXPECT_EQ(sd.at("case.mask_only.postprocess_fill_map").scalar_type(), torch::kChar);
  // Values equal the raw bytes: iou_predictions sits at data offset [0, 12).
  const std::string bytes = read_file(path);
  const uint64_t data_start = 8 + read_le64(bytes, 0);
  EXPECT_EQ(tensor_bytes(sd.at("case.batch.batch0.iou_predictions")), bytes.substr(data_start, 12));
  EXPECT_EQ(sam3::load_state_dict(path).size(), sd.size());
}

TEST(CheckpointTest, SaveSafetensorsFailures) {
  EXPECT_THROW(
      sam3::save_safetensors(temp_dir() + "/no/such/dir/x.safetensors", {{"x", torch::ones({1})}}),
      sam3::Error);
  EXPECT_THROW(sam3::save_safetensors(temp_dir() + "/u.safetensors",
                                      {{"x", torch::ones({1}, torch::kComplexDouble)}}),
               sam3::Error);
  EXPECT_THROW(sam3::save_safetensors(temp_dir() + "/u.safetensors", {{"x", torch::Tensor()}}),
               sam3::Error);
}

// ---------------------------------------------------------------------------------------
// Errors: missing / empty / unknown files.

TEST(CheckpointTest, MissingFileThrows) {
  const std::string path = temp_dir() + "/nope.pt";
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), path + ": file not found");
  EXPECT_CHECKPOINT_ERROR(sam3::load_torch_zip(path), "file not found");
  EXPECT_CHECKPOINT_ERROR(sam3::load_safetensors(path), "file not found");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(temp_dir()), "not a regular file");
}

TEST(CheckpointTest, EmptyFileThrows) {
  const std::string path = temp_dir() + "/empty.pt";
  write_file(path, "");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "unrecognised checkpoint format");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "empty");
  EXPECT_CHECKPOINT_ERROR(sam3::load_torch_zip(path), "not a valid torch zip archive");
  EXPECT_CHECKPOINT_ERROR(sam3::load_safetensors(path), "truncated");
}

TEST(CheckpointTest, UnrecognisedFormatThrows) {
  const std::string path = temp_dir() + "/text.pt";
  write_file(path, "this is not a checkpoint at all, just some text\n");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path),
                          path +
                              ": unrecognised checkpoint format (expected a torch.save "
                              ".pt/.pth zip archive or .safetensors)");
}

TEST(CheckpointTest, LegacyTorchSaveFormatThrows) {
  const std::string path = temp_dir() + "/legacy.pt";
  write_file(path, bin("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02"));
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "legacy");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "torch>=1.6");
  EXPECT_CHECKPOINT_ERROR(sam3::load_torch_zip(path), "legacy");
}

// ---------------------------------------------------------------------------------------
// Errors: broken or hostile zip archives.

TEST(CheckpointTest, TruncatedZipThrows) {
  const std::string bytes = read_file(fixture_path("sam3/tiny-a/checkpoint.pt"));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = temp_dir() + "/half.pt";
  write_file(path, bytes.substr(0, bytes.size() / 2));
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "not a valid torch zip archive");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "truncated");
  // Only the last bytes missing (central directory cut).
  write_file(path, bytes.substr(0, bytes.size() - 10));
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), path + ":");
  // Just the zip signature.
  write_file(path, "PK\x03\x04");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "not a valid torch zip archive");
}

TEST(CheckpointTest, CorruptedDataPklInFixtureThrows) {
  const std::string src = fixture_path("sam3/tiny-a/checkpoint.pt");
  size_t offset = 0;
  size_t size = 0;
  {
    caffe2::serialize::PyTorchStreamReader reader(src);
    offset = reader.getRecordOffset("data.pkl");
    size = std::get<1>(reader.getRecord("data.pkl"));
  }
  ASSERT_GT(size, 100u);
  std::string bytes = read_file(src);
  // Overwrite the middle of data.pkl with an invalid opcode (the zip CRC no longer
  // matches either: whichever check fires first, it must be a CheckpointError).
  for (size_t k = offset + size / 2; k < offset + size / 2 + 16; ++k) bytes[k] = '\xff';
  const std::string path = temp_dir() + "/corrupt.pt";
  write_file(path, bytes);
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), path + ":");
}

TEST(CheckpointTest, GarbageDataPklThrows) {
  const std::string path = make_archive(bin("\x80\x02\xff\xfe garbage"));
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "unsupported pickle opcode 0xff");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive("")), "truncated pickle stream");
  // A zip without data.pkl.
  {
    const std::string p = temp_dir() + "/other.pt";
    caffe2::serialize::PyTorchStreamWriter writer(p);
    writer.writeRecord("something", "x", 1);
    writer.writeEndOfFile();
    EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(p), "no data.pkl");
  }
}

TEST(CheckpointTest, RefusesForbiddenGlobals) {
  // os.system('ls') via GLOBAL + REDUCE.
  const std::string evil =
      bin("\x80\x02"
          "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.");
  const std::string path = make_archive(evil);
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "refusing global 'os.system'");
  // builtins.exec via protocol-4 STACK_GLOBAL.
  const std::string evil4 =
      bin("\x80\x04\x8c\x08"
          "builtins\x8c\x04"
          "exec\x93)R.");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(evil4)),
                          "refusing global 'builtins.exec'");
  // A torch global that is not on the allow-list.
  Pickle p;
  p.global("torch._utils", "_rebuild_device_tensor_from_numpy").stop();
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(p.bytes())),
                          "refusing global 'torch._utils._rebuild_device_tensor_from_numpy'");
  // An allowed global used the wrong way: a storage type is not callable.
  Pickle q;
  q.global("torch", "FloatStorage").op(')').op('R').stop();
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(q.bytes())), "cannot be called");
}

TEST(CheckpointTest, MalformedPickleStreamsThrow) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {bin("\x80\x02}q\x00h\x05."), "memo index 5 is not defined"},
      {bin("\x80\x02}j\xff\xff\xff\x7f."), "memo index 2147483647 is not defined"},
      {bin("\x80\x02}q\x00"), "truncated pickle stream"},
      {bin("\x80\x02X\xff\xff\xff\xff"), "truncated pickle stream"},
      {bin("\x80\x02s."), "stack underflow"},
      {bin("\x80\x02(}t."), "expected a dict"},
      {bin("\x80\x02}u."), "missing MARK"},
      {bin("\x80\x02]]b."), "BUILD on a list"},
      {bin("\x80\x09}."), "unsupported pickle protocol 9"},
      {bin("\x80\x02}Q."), "persistent id"},
      {bin("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), "integer too large"},
      {bin("\x80\x02"
           "cos\nsys"),
       "unterminated or overlong GLOBAL name"},
      {bin("\x80\x02i."), "unsupported pickle opcode 0x69 ('i')"},
      {bin("\x80\x02N."), "the checkpoint holds a None, expected a dict"},
  };
  for (const auto& [pkl, expected] : cases) {
    SCOPED_TRACE(expected);
    EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(pkl)), expected);
  }
}

TEST(CheckpointTest, HostileStructuresDoNotCrash) {
  // 200000 nested 1-tuples: destruction must not recurse.
  std::string deep = "\x80\x02)";
  deep += std::string(200000, '\x85');
  deep += ".";
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(deep)), "expected a dict");
  // A dict that contains itself: flattening must stop.
  const std::string cyclic =
      bin("\x80\x02}q\x00X\x01\x00\x00\x00"
          "ah\x00s.");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(cyclic)), "nested too deeply");
  // A list appended to itself is no dict (and must not leak or loop).
  const std::string self_list =
      bin("\x80\x02]q\x00h\x00"
          "a.");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(self_list)), "expected a dict");
  // Millions of MARKs are bounded.
  std::string marks = "\x80\x02";
  marks += std::string(1 << 17, '(');
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(marks)), "MARKs nested too deeply");
  // Millions of stack pushes are bounded.
  std::string pushes = bin("\x80\x02}q\x00");
  for (int k = 0; k < (1 << 20) + 1; ++k) pushes += bin("h\x00");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(pushes)), "stack too deep");
}

TEST(CheckpointTest, StorageTooSmallForTensorThrows) {
  // 3x3 float tensor over a 4-element storage.
  EXPECT_CHECKPOINT_ERROR(
      sam3::load_state_dict(make_single_tensor_archive(4, 4, 0, {3, 3}, {3, 1})),
      "but the storage holds only 4 elements");
  // Offset pushes the last element past the end.
  EXPECT_CHECKPOINT_ERROR(
      sam3::load_state_dict(make_single_tensor_archive(9, 9, 1, {3, 3}, {3, 1})),
      "reaches element 9");
  // Strides reaching far away, with overflow.
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(
                              4, 4, 0, {3, 3}, {int64_t{1} << 62, int64_t{1} << 62})),
                          "extent overflows");
  // Negative sizes / strides / offsets.
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(4, 4, 0, {-1}, {1})),
                          "invalid size");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(4, 4, 0, {2}, {-1})),
                          "negative stride");
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(4, 4, -1, {2}, {1})),
                          "negative storage offset");
  // size/stride rank mismatch.
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(4, 4, 0, {2, 2}, {1})),
                          "differ in length");
  // The storage record is shorter than its declared numel.
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_single_tensor_archive(100, 4, 0, {4}, {1})),
                          "holds 16 bytes but 100 elements");
  // A stride-0 view that would expand to terabytes.
  EXPECT_CHECKPOINT_ERROR(
      sam3::load_state_dict(make_single_tensor_archive(4, 4, 0, {int64_t{1} << 40}, {0})),
      "would expand");
}

TEST(CheckpointTest, MissingStorageRecordThrows) {
  Pickle p;
  p.empty_dict().str("w").tensor("FloatStorage", "7", 4, 0, {4}, {1}).setitem().stop();
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(make_archive(p.bytes())),
                          "storage record 'data/7' is missing");
}

TEST(CheckpointTest, ZipEntryClaimingHugeSizeIsRejected) {
  Pickle p;
  p.empty_dict().stop();
  const std::string path = make_archive(p.bytes());
  std::string bytes = read_file(path);
  // Patch the uncompressed size of data.pkl in the central directory.
  bool patched = false;
  for (size_t pos = bytes.find("PK\x01\x02"); pos != std::string::npos;
       pos = bytes.find("PK\x01\x02", pos + 4)) {
    const size_t name_len = static_cast<unsigned char>(bytes[pos + 28]) |
                            (static_cast<unsigned char>(bytes[pos + 29]) << 8);
    const std::string name = bytes.substr(pos + 46, name_len);
    if (name.size() < 8 || name.compare(name.size() - 8, 8, "data.pkl") != 0) continue;
    const std::string size32 = bytes.substr(pos + 24, 4);
    ASSERT_NE(size32, "\xff\xff\xff\xff") << "zip64 sizes: adjust the test";
    bytes.replace(pos + 24, 4, "\xf0\xff\xff\x7f");
    patched = true;
  }
  ASSERT_TRUE(patched);
  write_file(path, bytes);
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "more than the whole file");
}

// ---------------------------------------------------------------------------------------
// Errors: broken safetensors.

TEST(CheckpointTest, BrokenSafetensorsThrow) {
  const std::string dir = temp_dir();
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string data(16, '\0');
  struct Case {
    std::string name;
    std::string bytes;
    std::string expected;
  };
  std::string huge_len(8, '\xff');
  huge_len[7] = '\x00';
  const std::vector<Case> cases = {
      {"truncated_data", safetensors_file(good_header, data.substr(0, 10)), "out of range"},
      {"bad_json", safetensors_file(R"({"a":{"dtype":"F32",)", data), "invalid safetensors JSON"},
      {"not_object", safetensors_file("[1,2,3]", ""), "not a JSON object"},
      {"offsets_out_of_range",
       safetensors_file(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})", data),
       "tensor 'a': data_offsets [16, 32] out of range"},
      {"offsets_reversed",
       safetensors_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", data),
       "out of range"},
      {"offsets_vs_shape",
       safetensors_file(R"({"a":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", data),
       "needs 24"},
      {"negative_shape",
       safetensors_file(R"({"a":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}})", data),
       "invalid shape"},
      {"overflowing_shape",
       safetensors_file(
           R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data),
       "too large"},
      {"unknown_dtype",
       safetensors_file(R"({"a":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,16]}})", data),
       "tensor 'a': unsupported dtype 'F8_E4M3'"},
      {"missing_offsets", safetensors_file(R"({"a":{"dtype":"F32","shape":[2,2]}})", data),
       "data_offsets"},
      {"bad_metadata", safetensors_file(R"({"__metadata__":{"k":3}})", ""), "__metadata__"},
      {"header_length_huge", huge_len + good_header + data, "exceeds the file size"},
      {"too_short", bin("\x10\x00\x00"), "truncated"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name + ".safetensors";
    write_file(path, c.bytes);
    EXPECT_CHECKPOINT_ERROR(sam3::load_safetensors(path), c.expected);
    EXPECT_CHECKPOINT_ERROR(sam3::load_safetensors(path), path + ":");
  }
  // Detected as safetensors by load_state_dict, and the same errors come out.
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(dir + "/offsets_vs_shape.safetensors"), "needs 24");
  // A valid file cut short in its data section.
  const std::string path = dir + "/cut.safetensors";
  sam3::save_safetensors(path, {{"x", torch::ones({100})}});
  const std::string bytes = read_file(path);
  write_file(path, bytes.substr(0, bytes.size() - 1));
  EXPECT_CHECKPOINT_ERROR(sam3::load_state_dict(path), "tensor 'x'");
}

}  // namespace
