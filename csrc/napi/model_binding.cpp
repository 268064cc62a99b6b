// Bindings of the model kernels as tensor ops: each runs on its inputs' device,
// validates shapes, dtypes and devices, and allocates its outputs there.
#include <cmath>
#include <utility>
#include <vector>
#include "../core/model_kernels.h"
#include "../cuda/cuda_api.h"
#include "args.h"
#include "bindings.h"
#include "js_errors.h"
#include "tensor_object.h"

namespace valr {
namespace js {
namespace {

NativeTensor* f32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  NativeTensor* t = NativeTensor::FromArg(info, i, name);
  t->expect(name, DType::Float32);
  return t;
}

NativeTensor* optionalF32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return isAbsent(info, i) ? nullptr : f32(info, i, name);
}

// Every tensor must be on `d`; makes d current for the CUDA backend.
void onDevice(Device d, std::initializer_list<std::pair<const char*, const NativeTensor*>> ts) {
  for (auto& [name, t] : ts)
    if (t)
      VALR_CHECK(t->device() == d, Device, "argument '" << name << "' is on " << t->device().str() << ", expected "
                                                        << d.str() << " like the first input");
  if (d.isCuda()) cuda::stream(d.index);
}

void expectShape(const char* name, const NativeTensor* t, const std::vector<int64_t>& shape) {
  VALR_CHECK(t->shape() == shape, Shape,
             "argument '" << name << "' must have shape " << shapeString(shape) << ", got " << shapeString(t->shape()));
}

void expectNumel(const char* name, const NativeTensor* t, int64_t n, const char* what) {
  VALR_CHECK(t->numel() == n, Shape, "argument '" << name << "' " << shapeString(t->shape()) << " must have " << n
                                                  << " elements (" << what << ")");
}

float* ptr(const NativeTensor* t) { return t ? static_cast<float*>(t->data()) : nullptr; }

bool argBool(const Napi::CallbackInfo& info, size_t i) { return !isAbsent(info, i) && arg(info, i).ToBoolean().Value(); }

int64_t lastDim(const NativeTensor* t) { return t->shape().empty() ? 1 : t->shape().back(); }

#define DISPATCH(dev, call) ((dev).isCuda() ? cuda::call : cpu::call)

// gemm(a, b, transA, transB, bias?, out?, accumulate?, alpha?) -> out
// a [M, K] (or [K, M] with transA), b [K, N] (or [N, K]); 3-D a and b are batched (b may be 2-D: shared).
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  NativeTensor* a = f32(info, 0, "a");
  NativeTensor* b = f32(info, 1, "b");
  const bool ta = argBool(info, 2), tb = argBool(info, 3);
  NativeTensor* bias = optionalF32(info, 4, "bias");
  const auto& as = a->shape();
  const auto& bs = b->shape();
  VALR_CHECK(as.size() == 2 || as.size() == 3, Shape, "argument 'a' must be 2-D or 3-D (batched), got " << shapeString(as));
  VALR_CHECK(bs.size() == 2 || bs.size() == 3, Shape, "argument 'b' must be 2-D or 3-D (batched), got " << shapeString(bs));
  const int64_t batch = as.size() == 3 ? as[0] : 1;
  VALR_CHECK(bs.size() == 2 || (as.size() == 3 && bs[0] == batch), Shape,
             "argument 'b' " << shapeString(bs) << " must be 2-D or have batch " << batch << " like 'a' " << shapeString(as));
  const int64_t ar = as[as.size() - 2], ac = as.back(), br = bs[bs.size() - 2], bc = bs.back();
  const int64_t M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
  VALR_CHECK(K == Kb, Shape, "matmul inner dimensions differ: op(a) is [" << M << ", " << K << "] but op(b) is [" << Kb
                                                                          << ", " << N << "] (a " << shapeString(as)
                                                                          << (ta ? " transposed" : "") << ", b " << shapeString(bs)
                                                                          << (tb ? " transposed" : "") << ")");
  if (bias) expectShape("bias", bias, {N});
  std::vector<int64_t> cshape = as.size() == 3 ? std::vector<int64_t>{batch, M, N} : std::vector<int64_t>{M, N};
  onDevice(a->device(), {{"b", b}, {"bias", bias}});
  const bool accumulate = argBool(info, 6);
  Napi::Object outObj;
  float* c;
  if (!isAbsent(info, 5)) {
    NativeTensor* out = f32(info, 5, "out");
    expectShape("out", out, cshape);
    onDevice(a->device(), {{"out", out}});
    outObj = arg(info, 5).As<Napi::Object>();
    c = ptr(out);
  } else {
    VALR_CHECK(!accumulate, Argument, "argument 'accumulate' needs an 'out' tensor to add into");
    std::tie(outObj, c) = NativeTensor::NewFloat(info.Env(), a->device(), cshape);
  }
  GemmArgs g;
  g.transA = ta;
  g.transB = tb;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = ptr(a);
  g.lda = ac;
  g.B = ptr(b);
  g.ldb = bc;
  g.C = c;
  g.ldc = N;
  g.alpha = isAbsent(info, 7) ? 1.f : float(argNumber(info, 7, "alpha"));
  g.accumulate = accumulate;
  g.bias = ptr(bias);
  g.batch = batch;
  g.strideA = as.size() == 3 ? ar * ac : 0;
  g.strideB = bs.size() == 3 ? br * bc : 0;
  g.strideC = M * N;
  DISPATCH(a->device(), gemm(g));
  return outObj;
}

// Attention shapes from q [B, Tq, Hq, Dh] and k [B, Tk, Hkv, Dh].
AttentionDims attentionDims(const NativeTensor* q, const NativeTensor* k, const NativeTensor* v, bool causal,
                            double scale) {
  const auto& qs = q->shape();
  const auto& ks = k->shape();
  VALR_CHECK(qs.size() == 4, Shape, "argument 'q' must be [B, Tq, Hq, Dh], got " << shapeString(qs));
  VALR_CHECK(ks.size() == 4 && ks[0] == qs[0] && ks[3] == qs[3], Shape,
             "argument 'k' must be [" << qs[0] << ", Tk, Hkv, " << qs[3] << "], got " << shapeString(ks));
  expectShape("v", v, ks);
  VALR_CHECK(ks[2] > 0 && qs[2] % ks[2] == 0, Shape,
             "query heads (" << qs[2] << ") must be a multiple of key/value heads (" << ks[2] << ")");
  VALR_CHECK(ks[1] >= qs[1], Shape, "there are more queries (" << qs[1] << ") than keys (" << ks[1] << ")");
  AttentionDims d;
  d.B = qs[0];
  d.Tq = qs[1];
  d.Hq = qs[2];
  d.Dh = qs[3];
  d.Tk = ks[1];
  d.Hkv = ks[2];
  d.causal = causal;
  d.scale = float(scale);
  return d;
}

const int32_t* keyMaskArg(const Napi::CallbackInfo& info, size_t i, const AttentionDims& d) {
  if (isAbsent(info, i)) return nullptr;
  Napi::Int32Array m = argInt32Array(info, i, "keyMask");
  VALR_CHECK(int64_t(m.ElementLength()) == d.B * d.Tk, Shape,
             "argument 'keyMask' must have B*Tk = " << d.B * d.Tk << " elements, got " << m.ElementLength());
  return m.Data();
}

double scaleArg(const Napi::CallbackInfo& info, size_t i, int64_t Dh) {
  return isAbsent(info, i) ? 1.0 / std::sqrt(double(std::max<int64_t>(Dh, 1))) : argNumber(info, i, "scale");
}

// attentionForward(q, k, v, keyMask?, causal, scale?) -> { out, lse }
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  NativeTensor *q = f32(info, 0, "q"), *k = f32(info, 1, "k"), *v = f32(info, 2, "v");
  AttentionDims d = attentionDims(q, k, v, argBool(info, 4), 0);
  d.scale = float(scaleArg(info, 5, d.Dh));
  const int32_t* mask = keyMaskArg(info, 3, d);
  onDevice(q->device(), {{"k", k}, {"v", v}});
  auto [out, po] = NativeTensor::NewFloat(info.Env(), q->device(), q->shape());
  auto [lse, pl] = NativeTensor::NewFloat(info.Env(), q->device(), {d.B, d.Hq, d.Tq});
  DISPATCH(q->device(), attentionForward(ptr(q), ptr(k), ptr(v), mask, po, pl, d));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("out", out);
  r.Set("lse", lse);
  return r;
}

// attentionBackward(dout, q, k, v, out, lse, keyMask?, causal, scale?) -> { dq, dk, dv }
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  NativeTensor *dout = f32(info, 0, "dout"), *q = f32(info, 1, "q"), *k = f32(info, 2, "k"), *v = f32(info, 3, "v");
  NativeTensor *out = f32(info, 4, "out"), *lse = f32(info, 5, "lse");
  AttentionDims d = attentionDims(q, k, v, argBool(info, 7), 0);
  d.scale = float(scaleArg(info, 8, d.Dh));
  expectShape("dout", dout, q->shape());
  expectShape("out", out, q->shape());
  expectShape("lse", lse, {d.B, d.Hq, d.Tq});
  const int32_t* mask = keyMaskArg(info, 6, d);
  onDevice(q->device(), {{"dout", dout}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}});
  auto [dq, pdq] = NativeTensor::NewFloat(info.Env(), q->device(), q->shape());
  auto [dk, pdk] = NativeTensor::NewFloat(info.Env(), q->device(), k->shape());
  auto [dv, pdv] = NativeTensor::NewFloat(info.Env(), q->device(), v->shape());
  DISPATCH(q->device(), attentionBackward(ptr(dout), ptr(q), ptr(k), ptr(v), ptr(out), ptr(lse), mask, pdq, pdk, pdv, d));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("dq", dq);
  r.Set("dk", dk);
  r.Set("dv", dv);
  return r;
}

// rmsNorm(x [..., D], w [D], eps) -> { y, rstd [rows] }
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  NativeTensor *x = f32(info, 0, "x"), *w = f32(info, 1, "weight");
  const int64_t D = lastDim(x), rows = D ? x->numel() / D : 0;
  expectShape("weight", w, {D});
  const float eps = float(argNumber(info, 2, "eps"));
  onDevice(x->device(), {{"weight", w}});
  auto [y, py] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  auto [rstd, pr] = NativeTensor::NewFloat(info.Env(), x->device(), {rows});
  DISPATCH(x->device(), rmsNormForward(ptr(x), ptr(w), py, pr, rows, D, eps));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("y", y);
  r.Set("rstd", rstd);
  return r;
}

// rmsNormBackward(dy, x, w, rstd, dw?) -> dx; dw += weight gradient when given
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  NativeTensor *dy = f32(info, 0, "dy"), *x = f32(info, 1, "x"), *w = f32(info, 2, "weight"), *rstd = f32(info, 3, "rstd");
  NativeTensor* dw = optionalF32(info, 4, "dw");
  const int64_t D = lastDim(x), rows = D ? x->numel() / D : 0;
  expectShape("dy", dy, x->shape());
  expectShape("weight", w, {D});
  expectShape("rstd", rstd, {rows});
  if (dw) expectShape("dw", dw, {D});
  onDevice(x->device(), {{"dy", dy}, {"weight", w}, {"rstd", rstd}, {"dw", dw}});
  auto [dx, pdx] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  DISPATCH(x->device(), rmsNormBackward(ptr(dy), ptr(x), ptr(w), ptr(rstd), pdx, ptr(dw), rows, D));
  return dx;
}

// layerNorm(x, w, b?, eps) -> { y, mean, rstd }
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  NativeTensor *x = f32(info, 0, "x"), *w = f32(info, 1, "weight"), *b = optionalF32(info, 2, "bias");
  const int64_t D = lastDim(x), rows = D ? x->numel() / D : 0;
  expectShape("weight", w, {D});
  if (b) expectShape("bias", b, {D});
  const float eps = float(argNumber(info, 3, "eps"));
  onDevice(x->device(), {{"weight", w}, {"bias", b}});
  auto [y, py] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  auto [mean, pm] = NativeTensor::NewFloat(info.Env(), x->device(), {rows});
  auto [rstd, pr] = NativeTensor::NewFloat(info.Env(), x->device(), {rows});
  DISPATCH(x->device(), layerNormForward(ptr(x), ptr(w), ptr(b), py, pm, pr, rows, D, eps));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("y", y);
  r.Set("mean", mean);
  r.Set("rstd", rstd);
  return r;
}

// layerNormBackward(dy, x, w, mean, rstd, dw?, db?) -> dx
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  NativeTensor *dy = f32(info, 0, "dy"), *x = f32(info, 1, "x"), *w = f32(info, 2, "weight");
  NativeTensor *mean = f32(info, 3, "mean"), *rstd = f32(info, 4, "rstd");
  NativeTensor *dw = optionalF32(info, 5, "dw"), *db = optionalF32(info, 6, "db");
  const int64_t D = lastDim(x), rows = D ? x->numel() / D : 0;
  expectShape("dy", dy, x->shape());
  expectShape("weight", w, {D});
  expectShape("mean", mean, {rows});
  expectShape("rstd", rstd, {rows});
  if (dw) expectShape("dw", dw, {D});
  if (db) expectShape("db", db, {D});
  onDevice(x->device(), {{"dy", dy}, {"weight", w}, {"mean", mean}, {"rstd", rstd}, {"dw", dw}, {"db", db}});
  auto [dx, pdx] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  DISPATCH(x->device(), layerNormBackward(ptr(dy), ptr(x), ptr(w), ptr(mean), ptr(rstd), pdx, ptr(dw), ptr(db), rows, D));
  return dx;
}

// rope(x [B, T, H, Dh], positions Int32Array [B*T], theta, inverse?) -> y
Napi::Value Rope(const Napi::CallbackInfo& info) {
  NativeTensor* x = f32(info, 0, "x");
  VALR_CHECK(x->shape().size() == 4, Shape, "argument 'x' must be [B, T, H, Dh], got " << shapeString(x->shape()));
  Napi::Int32Array pos = argInt32Array(info, 1, "positions");
  const int64_t rows = x->shape()[0] * x->shape()[1];
  VALR_CHECK(int64_t(pos.ElementLength()) == rows, Shape,
             "argument 'positions' must have B*T = " << rows << " elements, got " << pos.ElementLength());
  for (size_t i = 0; i < pos.ElementLength(); ++i)
    VALR_CHECK(pos[i] >= 0, Range, "argument 'positions'[" << i << "] = " << pos[i] << " is negative");
  const float theta = float(argNumber(info, 2, "theta"));
  VALR_CHECK(theta > 0, Argument, "argument 'theta' must be positive, got " << theta);
  onDevice(x->device(), {});
  auto [y, py] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  DISPATCH(x->device(), rope(ptr(x), py, pos.Data(), rows, x->shape()[2], x->shape()[3], theta, argBool(info, 3)));
  return y;
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  NativeTensor *gate = f32(info, 0, "gate"), *up = f32(info, 1, "up");
  expectShape("up", up, gate->shape());
  onDevice(gate->device(), {{"up", up}});
  auto [y, py] = NativeTensor::NewFloat(info.Env(), gate->device(), gate->shape());
  DISPATCH(gate->device(), swigluForward(ptr(gate), ptr(up), py, gate->numel()));
  return y;
}

// swigluBackward(dy, gate, up) -> { dgate, dup }
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  NativeTensor *dy = f32(info, 0, "dy"), *gate = f32(info, 1, "gate"), *up = f32(info, 2, "up");
  expectShape("gate", gate, dy->shape());
  expectShape("up", up, dy->shape());
  onDevice(dy->device(), {{"gate", gate}, {"up", up}});
  auto [dg, pdg] = NativeTensor::NewFloat(info.Env(), dy->device(), dy->shape());
  auto [du, pdu] = NativeTensor::NewFloat(info.Env(), dy->device(), dy->shape());
  DISPATCH(dy->device(), swigluBackward(ptr(dy), ptr(gate), ptr(up), pdg, pdu, dy->numel()));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("dgate", dg);
  r.Set("dup", du);
  return r;
}

Napi::Value Gelu(const Napi::CallbackInfo& info) {
  NativeTensor* x = f32(info, 0, "x");
  onDevice(x->device(), {});
  auto [y, py] = NativeTensor::NewFloat(info.Env(), x->device(), x->shape());
  DISPATCH(x->device(), geluForward(ptr(x), py, x->numel()));
  return y;
}

Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  NativeTensor *dy = f32(info, 0, "dy"), *x = f32(info, 1, "x");
  expectShape("x", x, dy->shape());
  onDevice(dy->device(), {{"x", x}});
  auto [dx, pdx] = NativeTensor::NewFloat(info.Env(), dy->device(), dy->shape());
  DISPATCH(dy->device(), geluBackward(ptr(dy), ptr(x), pdx, dy->numel()));
  return dx;
}

// crossEntropy(logits [N, V], targets Int32Array [N], ignoreIndex, divisor?, withGrad?, gradScale?)
//   -> { lossSum, count, loss (= lossSum / divisor), dlogits | null }; divisor defaults to count
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  NativeTensor* logits = f32(info, 0, "logits");
  VALR_CHECK(logits->shape().size() >= 2, Shape, "argument 'logits' must be [N, V] (or [B, T, V]), got "
                                                     << shapeString(logits->shape()));
  const int64_t V = lastDim(logits), N = V ? logits->numel() / V : 0;
  Napi::Int32Array targets = argInt32Array(info, 1, "targets");
  VALR_CHECK(int64_t(targets.ElementLength()) == N, Shape,
             "argument 'targets' must have one entry per logits row (" << N << "), got " << targets.ElementLength());
  const int32_t ignore = int32_t(argInt(info, 2, "ignoreIndex", INT32_MIN, INT32_MAX));
  int64_t counted = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[size_t(i)];
    if (t == ignore) continue;
    VALR_CHECK(t >= 0 && t < V, Range, "argument 'targets'[" << i << "] = " << t << " is outside [0, " << V
                                                             << ") and is not the ignore index " << ignore);
    ++counted;
  }
  double divisor = isAbsent(info, 3) ? double(counted) : argNumber(info, 3, "divisor");
  VALR_CHECK(isAbsent(info, 3) || divisor > 0, Argument, "argument 'divisor' must be positive, got " << divisor);
  if (divisor <= 0) divisor = 1;  // no counted target: loss 0, gradient 0
  const bool withGrad = argBool(info, 4);
  const double gradScale = isAbsent(info, 5) ? 1.0 : argNumber(info, 5, "gradScale");
  onDevice(logits->device(), {});
  Napi::Value dl = info.Env().Null();
  float* pdl = nullptr;
  if (withGrad) {
    auto [t, p] = NativeTensor::NewFloat(info.Env(), logits->device(), logits->shape());
    dl = t;
    pdl = p;
  }
  int64_t count = 0;
  const double sum = DISPATCH(logits->device(), crossEntropy(ptr(logits), targets.Data(), N, V, ignore, divisor, pdl, gradScale, &count));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("lossSum", sum);
  r.Set("count", double(count));
  r.Set("loss", sum / divisor);
  r.Set("dlogits", dl);
  return r;
}

// adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step): updates param, m, v in place
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  NativeTensor *p = f32(info, 0, "param"), *g = f32(info, 1, "grad"), *m = f32(info, 2, "m"), *v = f32(info, 3, "v");
  expectShape("grad", g, p->shape());
  expectShape("m", m, p->shape());
  expectShape("v", v, p->shape());
  const double lr = argNumber(info, 4, "lr"), b1 = argNumber(info, 5, "beta1"), b2 = argNumber(info, 6, "beta2");
  const double eps = argNumber(info, 7, "eps"), wd = argNumber(info, 8, "weightDecay");
  const int64_t step = argInt(info, 9, "step", 1, int64_t(1) << 50);
  VALR_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, Argument, "betas must be in [0, 1), got " << b1 << ", " << b2);
  VALR_CHECK(lr >= 0 && eps > 0 && wd >= 0, Argument, "lr and weightDecay must be >= 0 and eps > 0");
  onDevice(p->device(), {{"grad", g}, {"m", m}, {"v", v}});
  DISPATCH(p->device(), adamw(ptr(p), ptr(g), ptr(m), ptr(v), p->numel(), float(lr), float(b1), float(b2), float(eps), float(wd), step));
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  NativeTensor* x = f32(info, 0, "x");
  onDevice(x->device(), {});
  return Napi::Number::New(info.Env(), DISPATCH(x->device(), sumSquares(ptr(x), x->numel())));
}

// copyBlock(src [B, srcT, ...], srcOffset, dst [B, dstT, ...], dstOffset, T, accumulate?)
Napi::Value CopyBlock(const Napi::CallbackInfo& info) {
  NativeTensor *src = f32(info, 0, "src"), *dst = f32(info, 2, "dst");
  const auto& ss = src->shape();
  const auto& ds = dst->shape();
  VALR_CHECK(ss.size() >= 2 && ds.size() == ss.size() && ss[0] == ds[0] &&
                 std::equal(ss.begin() + 2, ss.end(), ds.begin() + 2),
             Shape, "arguments 'src' " << shapeString(ss) << " and 'dst' " << shapeString(ds)
                                       << " must agree in every dim but the second (sequence)");
  const int64_t srcOffset = argInt(info, 1, "srcOffset", 0, ss[1]);
  const int64_t dstOffset = argInt(info, 3, "dstOffset", 0, ds[1]);
  const int64_t T = argInt(info, 4, "length", 0, std::min(ss[1] - srcOffset, ds[1] - dstOffset));
  VALR_CHECK(src->data() != dst->data(), Argument, "arguments 'src' and 'dst' must be different tensors");
  int64_t row = 1;
  for (size_t i = 2; i < ss.size(); ++i) row *= ss[i];
  onDevice(src->device(), {{"dst", dst}});
  DISPATCH(src->device(), copyBlock(ptr(src), ss[1], srcOffset, ptr(dst), ds[1], dstOffset, ss[0], T, row, argBool(info, 5)));
  return info.Env().Undefined();
}

// scatterRows(src [count, D], rows Int32Array (unique, in range), dst [N, D]): dst[rows[i]] = src[i]
Napi::Value ScatterRows(const Napi::CallbackInfo& info) {
  NativeTensor *src = f32(info, 0, "src"), *dst = f32(info, 2, "dst");
  Napi::Int32Array rows = argInt32Array(info, 1, "rows");
  const int64_t D = lastDim(dst), N = D ? dst->numel() / D : 0, count = int64_t(rows.ElementLength());
  expectNumel("src", src, count * D, "one row of D per index");
  std::vector<bool> seen(size_t(N), false);
  for (int64_t i = 0; i < count; ++i) {
    const int32_t r = rows[size_t(i)];
    VALR_CHECK(r >= 0 && r < N, Range, "argument 'rows'[" << i << "] = " << r << " is outside [0, " << N << ")");
    VALR_CHECK(!seen[size_t(r)], Argument, "argument 'rows' names row " << r << " twice");
    seen[size_t(r)] = true;
  }
  onDevice(src->device(), {{"dst", dst}});
  DISPATCH(src->device(), scatterRows(ptr(src), rows.Data(), count, D, ptr(dst)));
  return info.Env().Undefined();
}

}  // namespace

void initModelKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New<guarded<Gemm>>(env, "gemm"));
  exports.Set("attentionForward", Napi::Function::New<guarded<AttentionForward>>(env, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New<guarded<AttentionBackward>>(env, "attentionBackward"));
  exports.Set("rmsNorm", Napi::Function::New<guarded<RmsNorm>>(env, "rmsNorm"));
  exports.Set("rmsNormBackward", Napi::Function::New<guarded<RmsNormBackward>>(env, "rmsNormBackward"));
  exports.Set("layerNorm", Napi::Function::New<guarded<LayerNorm>>(env, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New<guarded<LayerNormBackward>>(env, "layerNormBackward"));
  exports.Set("rope", Napi::Function::New<guarded<Rope>>(env, "rope"));
  exports.Set("swiglu", Napi::Function::New<guarded<Swiglu>>(env, "swiglu"));
  exports.Set("swigluBackward", Napi::Function::New<guarded<SwigluBackward>>(env, "swigluBackward"));
  exports.Set("gelu", Napi::Function::New<guarded<Gelu>>(env, "gelu"));
  exports.Set("geluBackward", Napi::Function::New<guarded<GeluBackward>>(env, "geluBackward"));
  exports.Set("crossEntropy", Napi::Function::New<guarded<CrossEntropy>>(env, "crossEntropy"));
  exports.Set("adamw", Napi::Function::New<guarded<AdamW>>(env, "adamw"));
  exports.Set("sumSquares", Napi::Function::New<guarded<SumSquares>>(env, "sumSquares"));
  exports.Set("copyBlock", Napi::Function::New<guarded<CopyBlock>>(env, "copyBlock"));
  exports.Set("scatterRows", Napi::Function::New<guarded<ScatterRows>>(env, "scatterRows"));
}

}  // namespace js
}  // namespace valr
