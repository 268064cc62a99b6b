// Bindings of the inference decoder and the fused latent segment. Weights come as
// one flat array of tensors per call (12 per layer, then the final norm and the LM
// head) and are checked against the shape description; the KV cache is per-layer
// k and v tensors [B, capacity, kvHeads, headDim] owned by the caller.
#include <cmath>
#include <string>
#include <tuple>
#include "../core/decoder_engine.h"
#include "../cuda/cuda_api.h"
#include "args.h"
#include "bindings.h"
#include "js_errors.h"
#include "tensor_object.h"

namespace valr {
namespace js {
namespace {

constexpr int kPerLayer = 12;

struct EngineArgs {
  DecoderWeights weights;
  DecoderShape shape;
  KVCacheView cache;
  Device device;
  int64_t layers = 0;
};

int64_t field(Napi::Object o, const char* key, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  VALR_CHECK(v.IsNumber(), Argument, "config." << key << " must be a number, got " << describe(v));
  double d = v.As<Napi::Number>().DoubleValue();
  VALR_CHECK(d == std::floor(d) && d >= double(min) && d <= double(max), Argument,
             "config." << key << " must be an integer in [" << min << ", " << max << "], got " << d);
  return int64_t(d);
}

// Tensor i of `arr`, float32, with `shape` on `device`; nullptr allowed where optional.
const float* weightAt(Napi::Array arr, uint32_t i, const std::string& name, const std::vector<int64_t>& shape,
                      Device device, bool optional) {
  Napi::Value v = arr.Get(i);
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  Napi::Env env = arr.Env();
  VALR_CHECK(v.IsObject() && v.As<Napi::Object>().InstanceOf(env.GetInstanceData<Napi::FunctionReference>()->Value()),
             Argument, "weight '" << name << "' must be a tensor, got " << describe(v));
  NativeTensor* t = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  t->expect(name.c_str(), DType::Float32, &shape);
  VALR_CHECK(t->device() == device, Device, "weight '" << name << "' is on " << t->device().str() << ", expected " << device.str());
  return static_cast<const float*>(t->data());
}

EngineArgs engineArgs(const Napi::CallbackInfo& info, int64_t newPositions) {
  EngineArgs a;
  Napi::Value wv = arg(info, 0), cv = arg(info, 1), kv = arg(info, 2), vv = arg(info, 3);
  VALR_CHECK(cv.IsObject(), Argument, "argument 'config' must be an object, got " << describe(cv));
  Napi::Object c = cv.As<Napi::Object>();
  DecoderShape& s = a.shape;
  s.hidden = field(c, "hidden", 1, 1 << 20);
  s.heads = field(c, "heads", 1, 4096);
  s.kvHeads = field(c, "kvHeads", 1, 4096);
  s.headDim = field(c, "headDim", 1, 4096);
  s.intermediate = field(c, "intermediate", 1, 1 << 22);
  s.vocab = field(c, "vocab", 1, 1 << 24);
  s.ropeTheta = float(c.Get("ropeTheta").ToNumber().DoubleValue());
  s.eps = float(c.Get("eps").ToNumber().DoubleValue());
  VALR_CHECK(s.ropeTheta > 0 && s.eps > 0, Argument, "config.ropeTheta and config.eps must be positive");
  VALR_CHECK(s.heads % s.kvHeads == 0, Argument, "config.heads must be a multiple of config.kvHeads");
  VALR_CHECK(wv.IsArray() && kv.IsArray() && vv.IsArray(), Argument,
             "arguments 'weights', 'cacheK' and 'cacheV' must be arrays of tensors");
  Napi::Array w = wv.As<Napi::Array>(), ks = kv.As<Napi::Array>(), vs = vv.As<Napi::Array>();
  VALR_CHECK(w.Length() >= kPerLayer + 2 && (w.Length() - 2) % kPerLayer == 0, Argument,
             "argument 'weights' must hold 12 tensors per layer plus the final norm and the LM head, got " << w.Length());
  a.layers = (w.Length() - 2) / kPerLayer;
  VALR_CHECK(ks.Length() == uint32_t(a.layers) && vs.Length() == uint32_t(a.layers), Argument,
             "arguments 'cacheK' and 'cacheV' must hold one tensor per layer (" << a.layers << ")");
  // The device and cache geometry come from layer 0's k cache.
  NativeTensor* k0 = nullptr;
  {
    Napi::Value k0v = ks.Get(0u);
    VALR_CHECK(k0v.IsObject() && k0v.As<Napi::Object>().InstanceOf(info.Env().GetInstanceData<Napi::FunctionReference>()->Value()),
               Argument, "argument 'cacheK'[0] must be a tensor");
    k0 = Napi::ObjectWrap<NativeTensor>::Unwrap(k0v.As<Napi::Object>());
    k0->expect("cacheK[0]", DType::Float32);
    VALR_CHECK(k0->shape().size() == 4 && k0->shape()[2] == s.kvHeads && k0->shape()[3] == s.headDim, Shape,
               "argument 'cacheK'[0] must be [B, capacity, " << s.kvHeads << ", " << s.headDim << "], got " << shapeString(k0->shape()));
  }
  a.device = k0->device();
  a.cache.batch = k0->shape()[0];
  a.cache.capacity = k0->shape()[1];
  a.cache.length = argInt(info, 4, "cacheLength", 0, a.cache.capacity);
  VALR_CHECK(a.cache.length + newPositions <= a.cache.capacity, Range,
             "the KV cache holds " << a.cache.capacity << " positions; " << a.cache.length << " used + " << newPositions
                                   << " new do not fit");
  const std::vector<int64_t> cacheShape = k0->shape();
  for (int64_t l = 0; l < a.layers; ++l) {
    a.cache.k.push_back(const_cast<float*>(weightAt(ks, uint32_t(l), "cacheK[" + std::to_string(l) + "]", cacheShape, a.device, false)));
    a.cache.v.push_back(const_cast<float*>(weightAt(vs, uint32_t(l), "cacheV[" + std::to_string(l) + "]", cacheShape, a.device, false)));
  }
  Napi::Int32Array mask = argInt32Array(info, 5, "keyMask");
  VALR_CHECK(int64_t(mask.ElementLength()) == a.cache.batch * a.cache.capacity, Shape,
             "argument 'keyMask' must have B*capacity = " << a.cache.batch * a.cache.capacity << " entries, got " << mask.ElementLength());
  a.cache.keyMask = mask.Data();
  const int64_t D = s.hidden, qd = s.heads * s.headDim, kvd = s.kvHeads * s.headDim, I = s.intermediate;
  for (int64_t l = 0; l < a.layers; ++l) {
    const uint32_t o = uint32_t(l * kPerLayer);
    const std::string p = "layers." + std::to_string(l) + ".";
    DecoderLayerWeights L;
    L.qW = weightAt(w, o + 0, p + "q_proj.weight", {qd, D}, a.device, false);
    L.qB = weightAt(w, o + 1, p + "q_proj.bias", {qd}, a.device, true);
    L.kW = weightAt(w, o + 2, p + "k_proj.weight", {kvd, D}, a.device, false);
    L.kB = weightAt(w, o + 3, p + "k_proj.bias", {kvd}, a.device, true);
    L.vW = weightAt(w, o + 4, p + "v_proj.weight", {kvd, D}, a.device, false);
    L.vB = weightAt(w, o + 5, p + "v_proj.bias", {kvd}, a.device, true);
    L.oW = weightAt(w, o + 6, p + "o_proj.weight", {D, qd}, a.device, false);
    L.gateW = weightAt(w, o + 7, p + "gate_proj.weight", {I, D}, a.device, false);
    L.upW = weightAt(w, o + 8, p + "up_proj.weight", {I, D}, a.device, false);
    L.downW = weightAt(w, o + 9, p + "down_proj.weight", {D, I}, a.device, false);
    L.inputNorm = weightAt(w, o + 10, p + "input_layernorm.weight", {D}, a.device, false);
    L.postAttentionNorm = weightAt(w, o + 11, p + "post_attention_layernorm.weight", {D}, a.device, false);
    a.weights.layers.push_back(L);
  }
  a.weights.finalNorm = weightAt(w, uint32_t(a.layers * kPerLayer), "norm.weight", {D}, a.device, false);
  a.weights.lmHead = weightAt(w, uint32_t(a.layers * kPerLayer + 1), "lm_head.weight", {s.vocab, D}, a.device, false);
  if (a.device.isCuda()) cuda::stream(a.device.index);
  return a;
}

// decoderForward(weights, config, cacheK, cacheV, cacheLength, keyMask, x [B, T, D], positions [B*T],
//                tapLayer (-1: none), wantLogits) -> { hidden, tap, logits }
Napi::Value DecoderForward(const Napi::CallbackInfo& info) {
  NativeTensor* x = NativeTensor::FromArg(info, 6, "x");
  x->expect("x", DType::Float32);
  VALR_CHECK(x->shape().size() == 3, Shape, "argument 'x' must be [B, T, hidden], got " << shapeString(x->shape()));
  const int64_t T = x->shape()[1];
  EngineArgs a = engineArgs(info, T);
  const int64_t B = a.cache.batch, D = a.shape.hidden;
  VALR_CHECK(x->shape()[0] == B && x->shape()[2] == D && T >= 1, Shape,
             "argument 'x' must be [" << B << ", T >= 1, " << D << "], got " << shapeString(x->shape()));
  VALR_CHECK(x->device() == a.device, Device, "argument 'x' is on " << x->device().str() << ", the cache on " << a.device.str());
  Napi::Int32Array pos = argInt32Array(info, 7, "positions");
  VALR_CHECK(int64_t(pos.ElementLength()) == B * T, Shape, "argument 'positions' must have B*T = " << B * T << " entries");
  const int tapLayer = int(argInt(info, 8, "tapLayer", -1, a.layers));
  const bool wantLogits = !isAbsent(info, 9) && arg(info, 9).ToBoolean().Value();
  auto [hidden, ph] = NativeTensor::NewFloat(info.Env(), a.device, {B, T, D});
  Napi::Value tapV = info.Env().Null(), logitsV = info.Env().Null();
  float *pt = nullptr, *pl = nullptr;
  if (tapLayer >= 0) std::tie(tapV, pt) = NativeTensor::NewFloat(info.Env(), a.device, {B, T, D});
  if (wantLogits) std::tie(logitsV, pl) = NativeTensor::NewFloat(info.Env(), a.device, {B, a.shape.vocab});
  const float* px = static_cast<const float*>(x->data());
  if (a.device.isCuda()) cuda::decoderForward(a.weights, a.shape, a.cache, px, T, pos.Data(), ph, tapLayer, pt, pl);
  else cpu::decoderForward(a.weights, a.shape, a.cache, px, T, pos.Data(), ph, tapLayer, pt, pl);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("hidden", hidden);
  r.Set("tap", tapV);
  r.Set("logits", logitsV);
  return r;
}

// latentSegment(weights, config, cacheK, cacheV, cacheLength, keyMask, h0 [B, D], K, startPositions [B], tapLayer)
//   -> { taps [B, K, D], hidden [B, D] }
Napi::Value LatentSegment(const Napi::CallbackInfo& info) {
  const int64_t K = argInt(info, 7, "K", 1, 4096);
  EngineArgs a = engineArgs(info, K);
  const int64_t B = a.cache.batch, D = a.shape.hidden;
  NativeTensor* h0 = NativeTensor::FromArg(info, 6, "h0");
  const std::vector<int64_t> hs{B, D};
  h0->expect("h0", DType::Float32, &hs);
  VALR_CHECK(h0->device() == a.device, Device, "argument 'h0' is on " << h0->device().str() << ", the cache on " << a.device.str());
  Napi::Int32Array start = argInt32Array(info, 8, "startPositions");
  VALR_CHECK(int64_t(start.ElementLength()) == B, Shape, "argument 'startPositions' must have B = " << B << " entries");
  const int tapLayer = int(argInt(info, 9, "tapLayer", 0, a.layers));
  auto [taps, pt] = NativeTensor::NewFloat(info.Env(), a.device, {B, K, D});
  auto [hidden, ph] = NativeTensor::NewFloat(info.Env(), a.device, {B, D});
  const float* p0 = static_cast<const float*>(h0->data());
  if (a.device.isCuda()) cuda::latentSegment(a.weights, a.shape, a.cache, p0, K, start.Data(), tapLayer, pt, ph);
  else cpu::latentSegment(a.weights, a.shape, a.cache, p0, K, start.Data(), tapLayer, pt, ph);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("taps", taps);
  r.Set("hidden", hidden);
  return r;
}

}  // namespace

void initDecoderEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("decoderForward", Napi::Function::New<guarded<DecoderForward>>(env, "decoderForward"));
  exports.Set("latentSegment", Napi::Function::New<guarded<LatentSegment>>(env, "latentSegment"));
}

}  // namespace js
}  // namespace valr
