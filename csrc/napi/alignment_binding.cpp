// Bindings of the alignment kernels, in two forms:
//  - typed arrays in, typed arrays out (host memory, CPU kernels): the embedding API;
//  - NativeTensors on any device (the op follows the inputs' device): the Tensor ops
//    that the TypeScript autograd builds on. These take an optional `out` tensor.
#include <cmath>
#include "../core/alignment_kernels.h"
#include "../cuda/cuda_api.h"
#include "args.h"
#include "bindings.h"
#include "js_errors.h"
#include "tensor_object.h"

namespace valr {
namespace js {
namespace {

void checkRows(const int32_t* rows, int64_t count, int64_t numRows) {
  for (int64_t i = 0; i < count; ++i)
    VALR_CHECK(rows[i] >= 0 && rows[i] < numRows, Range,
               "argument 'rows'[" << i << "] = " << rows[i] << " is outside [0, " << numRows << ") (B*T rows)");
}

// Weights: absent (all 1) or a Float32Array of S finite, non-negative values.
const float* argWeights(const Napi::CallbackInfo& info, size_t i, int64_t S) {
  if (isAbsent(info, i)) return nullptr;
  Napi::Float32Array w = argFloat32Array(info, i, "weights");
  VALR_CHECK(int64_t(w.ElementLength()) == S, Shape,
             "argument 'weights' must have S = " << S << " elements, got " << w.ElementLength());
  for (int64_t s = 0; s < S; ++s)
    VALR_CHECK(std::isfinite(w[size_t(s)]) && w[size_t(s)] >= 0, Argument,
               "argument 'weights'[" << s << "] must be finite and >= 0, got " << w[size_t(s)]);
  return w.Data();
}

void checkLength(const char* name, size_t actual, int64_t expected, const std::vector<int64_t>& shape) {
  VALR_CHECK(int64_t(actual) == expected, Shape,
             "argument '" << name << "' must have " << expected << " elements for shape " << shapeString(shape)
                          << ", got " << actual);
}

std::vector<int64_t> argGrid(const Napi::CallbackInfo& info, size_t i, const char* name) {
  auto g = argShape(info, i, name, 2);
  VALR_CHECK(g[0] >= 1 && g[1] >= 1, Shape, "argument '" << name << "' must be a grid of positive sizes, got "
                                                          << shapeString(g));
  return g;
}

// Makes the tensor's device current so the backend's kernels run there.
void selectDevice(Device d) {
  if (d.isCuda()) cuda::stream(d.index);
}

void checkSameDevice(const char* name, const NativeTensor* t, Device d) {
  VALR_CHECK(t->device() == d, Device, "argument '" << name << "' is on " << t->device().str() << ", expected "
                                                    << d.str() << " (the device of the first input)");
}

// The `out` argument (optional): a float32 tensor of the given shape on `device`, or a new one.
Napi::Object outTensor(const Napi::CallbackInfo& info, size_t i, const std::vector<int64_t>& shape, Device device,
                       NativeTensor** outPtr) {
  if (!isAbsent(info, i)) {
    NativeTensor* out = NativeTensor::FromArg(info, i, "out");
    out->expect("out", DType::Float32);
    VALR_CHECK(numel(out->shape()) == numel(shape), Shape,
               "argument 'out' must have shape " << shapeString(shape) << ", got " << shapeString(out->shape()));
    checkSameDevice("out", out, device);
    *outPtr = out;
    return arg(info, i).As<Napi::Object>();
  }
  Napi::Object o = NativeTensor::NewFloat(info.Env(), device, shape).first;
  *outPtr = Napi::ObjectWrap<NativeTensor>::Unwrap(o);
  return o;
}

// Optional caller-owned output array at argument i (reused across calls to avoid
// faulting in fresh pages every time); it must not overlap any input.
Napi::Float32Array outArray(const Napi::CallbackInfo& info, size_t i, int64_t n,
                            std::initializer_list<Napi::TypedArray> inputs) {
  if (isAbsent(info, i)) return Napi::Float32Array::New(info.Env(), size_t(n));
  Napi::Float32Array out = argFloat32Array(info, i, "out");
  VALR_CHECK(int64_t(out.ElementLength()) == n, Shape,
             "argument 'out' must have " << n << " elements, got " << out.ElementLength());
  const char* o0 = reinterpret_cast<const char*>(out.Data());
  const char* o1 = o0 + out.ByteLength();
  for (const auto& in : inputs) {
    const char* i0 = static_cast<const char*>(in.ArrayBuffer().Data()) + in.ByteOffset();
    const char* i1 = i0 + in.ByteLength();
    VALR_CHECK(o1 <= i0 || i1 <= o0 || n == 0, Argument, "argument 'out' overlaps an input array");
  }
  return out;
}

// ---- tap --------------------------------------------------------------------

// tapGather(hidden: Float32Array, [B, T, D], rows: Int32Array, out?) -> Float32Array [count, D]
Napi::Value TapGather(const Napi::CallbackInfo& info) {
  Napi::Float32Array hidden = argFloat32Array(info, 0, "hidden");
  auto shape = argShape(info, 1, "hiddenShape", 3);
  Napi::Int32Array rows = argInt32Array(info, 2, "rows");
  checkLength("hidden", hidden.ElementLength(), numel(shape), shape);
  const int64_t numRows = shape[0] * shape[1], D = shape[2], count = int64_t(rows.ElementLength());
  checkRows(rows.Data(), count, numRows);
  Napi::Float32Array out = outArray(info, 3, count * D, {hidden, rows});
  cpu::tapGather(hidden.Data(), numRows, D, rows.Data(), count, out.Data());
  return out;
}

// tapScatter(grad: Float32Array, [S, K, D], rows: Int32Array, [B, T, D], out?) -> Float32Array [B, T, D]
Napi::Value TapScatter(const Napi::CallbackInfo& info) {
  Napi::Float32Array grad = argFloat32Array(info, 0, "grad");
  auto gshape = argShape(info, 1, "gradShape", 3);
  Napi::Int32Array rows = argInt32Array(info, 2, "rows");
  auto hshape = argShape(info, 3, "hiddenShape", 3);
  checkLength("grad", grad.ElementLength(), numel(gshape), gshape);
  const int64_t count = gshape[0] * gshape[1], D = gshape[2], numRows = hshape[0] * hshape[1];
  VALR_CHECK(hshape[2] == D, Shape, "argument 'hiddenShape' must end in D = " << D << " (from gradShape "
                                                                              << shapeString(gshape) << "), got "
                                                                              << shapeString(hshape));
  VALR_CHECK(int64_t(rows.ElementLength()) == count, Shape,
             "argument 'rows' must have S*K = " << count << " elements, got " << rows.ElementLength());
  checkRows(rows.Data(), count, numRows);
  ScatterPlan plan = buildScatterPlan(rows.Data(), count, numRows);
  Napi::Float32Array out = outArray(info, 4, numRows * D, {grad, rows});
  cpu::tapScatter(grad.Data(), count, D, plan, numRows, out.Data(), false);
  return out;
}

// tensorTapGather(hidden: NativeTensor [..., D] (rows = all but last dim), rows: Int32Array, out?)
//   -> NativeTensor [count, D]
Napi::Value TensorTapGather(const Napi::CallbackInfo& info) {
  NativeTensor* hidden = NativeTensor::FromArg(info, 0, "hidden");
  hidden->expect("hidden", DType::Float32);
  VALR_CHECK(hidden->shape().size() >= 2, Shape, "argument 'hidden' must be [B, T, D] or [N, D], got "
                                                     << shapeString(hidden->shape()));
  Napi::Int32Array rows = argInt32Array(info, 1, "rows");
  const int64_t D = hidden->shape().back(), numRows = D ? hidden->numel() / D : 0;
  const int64_t count = int64_t(rows.ElementLength());
  checkRows(rows.Data(), count, numRows);
  NativeTensor* out;
  Napi::Object o = outTensor(info, 2, {count, D}, hidden->device(), &out);
  selectDevice(hidden->device());
  if (hidden->device().isCuda()) cuda::tapGather(static_cast<const float*>(hidden->data()), numRows, D, rows.Data(), count, static_cast<float*>(out->data()));
  else cpu::tapGather(static_cast<const float*>(hidden->data()), numRows, D, rows.Data(), count, static_cast<float*>(out->data()));
  return o;
}

// tensorTapScatter(grad: NativeTensor [..., D], rows: Int32Array, hiddenShape: number[], out?, accumulate?)
//   -> NativeTensor of hiddenShape; with accumulate, out += scatter(grad).
Napi::Value TensorTapScatter(const Napi::CallbackInfo& info) {
  NativeTensor* grad = NativeTensor::FromArg(info, 0, "grad");
  grad->expect("grad", DType::Float32);
  VALR_CHECK(grad->shape().size() >= 2, Shape, "argument 'grad' must be [S, K, D] or [count, D], got "
                                                   << shapeString(grad->shape()));
  Napi::Int32Array rows = argInt32Array(info, 1, "rows");
  auto hshape = argShape(info, 2, "hiddenShape");
  const int64_t D = grad->shape().back(), count = D ? grad->numel() / D : 0;
  VALR_CHECK(hshape.size() >= 2 && hshape.back() == D, Shape,
             "argument 'hiddenShape' must be [B, T, " << D << "] or [N, " << D << "], got " << shapeString(hshape));
  const int64_t numRows = D ? numel(hshape) / D : 0;
  VALR_CHECK(int64_t(rows.ElementLength()) == count, Shape,
             "argument 'rows' must have " << count << " elements (one per grad row), got " << rows.ElementLength());
  checkRows(rows.Data(), count, numRows);
  bool accumulate = !isAbsent(info, 4) && arg(info, 4).ToBoolean().Value();
  VALR_CHECK(!accumulate || !isAbsent(info, 3), Argument, "argument 'accumulate' needs an 'out' tensor to add into");
  NativeTensor* out;
  Napi::Object o = outTensor(info, 3, hshape, grad->device(), &out);
  ScatterPlan plan = buildScatterPlan(rows.Data(), count, numRows);
  selectDevice(grad->device());
  if (grad->device().isCuda()) cuda::tapScatter(static_cast<const float*>(grad->data()), count, D, plan, numRows, static_cast<float*>(out->data()), accumulate);
  else cpu::tapScatter(static_cast<const float*>(grad->data()), count, D, plan, numRows, static_cast<float*>(out->data()), accumulate);
  return o;
}

// ---- bilinear upsample ------------------------------------------------------

UpsampleDims upsampleDims(const std::vector<int64_t>& in, const std::vector<int64_t>& grid) {
  VALR_CHECK(in[1] >= 1 && in[2] >= 1, Shape, "the token grid gh x gw must be positive, got " << shapeString(in));
  return UpsampleDims{in[0], in[1], in[2], grid[0], grid[1], in[3]};
}

// upsampleBilinear(x: Float32Array, [S, gh, gw, D], [Gh, Gw], out?) -> Float32Array [S, Gh, Gw, D]
Napi::Value UpsampleBilinear(const Napi::CallbackInfo& info) {
  Napi::Float32Array x = argFloat32Array(info, 0, "x");
  auto shape = argShape(info, 1, "xShape", 4);
  auto grid = argGrid(info, 2, "outGrid");
  checkLength("x", x.ElementLength(), numel(shape), shape);
  UpsampleDims d = upsampleDims(shape, grid);
  Napi::Float32Array y = outArray(info, 3, d.S * d.Gh * d.Gw * d.D, {x});
  cpu::upsampleBilinear(x.Data(), y.Data(), d);
  return y;
}

// upsampleBilinearBackward(dy: Float32Array, [S, gh, gw, D], [Gh, Gw], out?) -> Float32Array [S, gh, gw, D]
Napi::Value UpsampleBilinearBackward(const Napi::CallbackInfo& info) {
  Napi::Float32Array dy = argFloat32Array(info, 0, "dy");
  auto shape = argShape(info, 1, "xShape", 4);
  auto grid = argGrid(info, 2, "outGrid");
  UpsampleDims d = upsampleDims(shape, grid);
  std::vector<int64_t> dyShape{d.S, d.Gh, d.Gw, d.D};
  checkLength("dy", dy.ElementLength(), numel(dyShape), dyShape);
  Napi::Float32Array dx = outArray(info, 3, numel(shape), {dy});
  cpu::upsampleBilinearBackward(dy.Data(), dx.Data(), d, false);
  return dx;
}

// A tensor holding a token grid: [S, gh, gw, D], or [S, K, D] with K == gh*gw.
UpsampleDims tensorGridDims(const NativeTensor* t, const char* name, const std::vector<int64_t>& inGrid,
                            const std::vector<int64_t>& outGrid, bool isOutputSide) {
  const auto& s = t->shape();
  const int64_t gh = isOutputSide ? outGrid[0] : inGrid[0], gw = isOutputSide ? outGrid[1] : inGrid[1];
  if (s.size() == 3) {
    VALR_CHECK(s[1] == gh * gw, Shape,
               "argument '" << name << "' has " << s[1] << " tokens per segment, which is not " << gh << "x" << gw
                            << " = " << gh * gw << " (shape " << shapeString(s) << ")");
  } else {
    VALR_CHECK(s.size() == 4 && s[1] == gh && s[2] == gw, Shape,
               "argument '" << name << "' must be [S, " << gh << ", " << gw << ", D] or [S, " << gh * gw
                            << ", D], got " << shapeString(s));
  }
  return UpsampleDims{s[0], inGrid[0], inGrid[1], outGrid[0], outGrid[1], s.back()};
}

// tensorUpsampleBilinear(x, [gh, gw], [Gh, Gw], out?) -> y, [S, Gh*Gw, D] (or [S, Gh, Gw, D] for 4-D x)
Napi::Value TensorUpsampleBilinear(const Napi::CallbackInfo& info) {
  NativeTensor* x = NativeTensor::FromArg(info, 0, "x");
  x->expect("x", DType::Float32);
  auto inGrid = argGrid(info, 1, "inGrid"), outGrid = argGrid(info, 2, "outGrid");
  UpsampleDims d = tensorGridDims(x, "x", inGrid, outGrid, false);
  std::vector<int64_t> yShape = x->shape().size() == 3 ? std::vector<int64_t>{d.S, d.Gh * d.Gw, d.D}
                                                        : std::vector<int64_t>{d.S, d.Gh, d.Gw, d.D};
  NativeTensor* y;
  Napi::Object o = outTensor(info, 3, yShape, x->device(), &y);
  selectDevice(x->device());
  if (x->device().isCuda()) cuda::upsampleBilinear(static_cast<const float*>(x->data()), static_cast<float*>(y->data()), d);
  else cpu::upsampleBilinear(static_cast<const float*>(x->data()), static_cast<float*>(y->data()), d);
  return o;
}

// tensorUpsampleBilinearBackward(dy, [gh, gw], [Gh, Gw], out?, accumulate?) -> dx [S, gh*gw, D] (or 4-D)
Napi::Value TensorUpsampleBilinearBackward(const Napi::CallbackInfo& info) {
  NativeTensor* dy = NativeTensor::FromArg(info, 0, "dy");
  dy->expect("dy", DType::Float32);
  auto inGrid = argGrid(info, 1, "inGrid"), outGrid = argGrid(info, 2, "outGrid");
  UpsampleDims d = tensorGridDims(dy, "dy", inGrid, outGrid, true);
  std::vector<int64_t> dxShape = dy->shape().size() == 3 ? std::vector<int64_t>{d.S, d.gh * d.gw, d.D}
                                                          : std::vector<int64_t>{d.S, d.gh, d.gw, d.D};
  bool accumulate = !isAbsent(info, 4) && arg(info, 4).ToBoolean().Value();
  VALR_CHECK(!accumulate || !isAbsent(info, 3), Argument, "argument 'accumulate' needs an 'out' tensor to add into");
  NativeTensor* dx;
  Napi::Object o = outTensor(info, 3, dxShape, dy->device(), &dx);
  selectDevice(dy->device());
  if (dy->device().isCuda()) cuda::upsampleBilinearBackward(static_cast<const float*>(dy->data()), static_cast<float*>(dx->data()), d, accumulate);
  else cpu::upsampleBilinearBackward(static_cast<const float*>(dy->data()), static_cast<float*>(dx->data()), d, accumulate);
  return o;
}

// ---- REPA cosine loss -------------------------------------------------------

Napi::Object lossResult(Napi::Env env, const RepaResult& r, Napi::Array grads) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", r.total);
  Napi::Array per = Napi::Array::New(env, r.perTeacher.size());
  for (size_t m = 0; m < r.perTeacher.size(); ++m) per.Set(uint32_t(m), r.perTeacher[m]);
  o.Set("perTeacher", per);
  o.Set("gradPred", grads);
  return o;
}

Napi::Array argTeachers(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = arg(info, i);
  VALR_CHECK(v.IsArray(), Argument, "argument 'teachers' must be an array of teacher entries, got " << describe(v));
  Napi::Array a = v.As<Napi::Array>();
  VALR_CHECK(a.Length() >= 1 && a.Length() <= uint32_t(kMaxTeachers), Argument,
             "argument 'teachers' must hold 1 to " << kMaxTeachers << " teachers, got " << a.Length());
  return a;
}

Napi::Object teacherEntry(Napi::Array a, uint32_t m) {
  Napi::Value e = a.Get(m);
  VALR_CHECK(e.IsObject(), Argument, "argument 'teachers'[" << m << "] must be an object, got " << describe(e));
  return e.As<Napi::Object>();
}

// repaCosineLoss(teachers: {pred: Float32Array, target: Float32Array, shape: [S, P, D]}[],
//                weights?: Float32Array [S], gradScale?: number)
//   -> { loss, perTeacher: number[], gradPred: Float32Array[] }
Napi::Value RepaCosineLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = argTeachers(info, 0);
  std::vector<RepaTeacher> teachers;
  Napi::Array grads = Napi::Array::New(env, list.Length());
  int64_t S = -1;
  for (uint32_t m = 0; m < list.Length(); ++m) {
    Napi::Object e = teacherEntry(list, m);
    std::string tag = "teachers[" + std::to_string(m) + "]";
    Napi::Value shapeV = e.Get("shape"), predV = e.Get("pred"), targetV = e.Get("target");
    VALR_CHECK(shapeV.IsArray() && shapeV.As<Napi::Array>().Length() == 3, Shape,
               "argument '" << tag << ".shape' must be [S, P, D], got " << describe(shapeV));
    std::vector<int64_t> shape(3);
    for (uint32_t k = 0; k < 3; ++k) {
      Napi::Value dv = shapeV.As<Napi::Array>().Get(k);
      double dd = dv.IsNumber() ? dv.As<Napi::Number>().DoubleValue() : -1;
      VALR_CHECK(std::isfinite(dd) && dd >= 0 && std::floor(dd) == dd && dd < 1e12, Shape,
                 "argument '" << tag << ".shape'[" << k << "] must be a non-negative integer, got " << describe(dv));
      shape[k] = int64_t(dd);
    }
    VALR_CHECK(S < 0 || shape[0] == S, Shape, "argument '" << tag << ".shape' has S = " << shape[0]
                                                           << " but teachers[0] has S = " << S);
    S = shape[0];
    for (auto* name : {"pred", "target"}) {
      Napi::Value tv = std::string(name) == "pred" ? predV : targetV;
      VALR_CHECK(tv.IsTypedArray() && tv.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array, DType,
                 "argument '" << tag << "." << name << "' must be a Float32Array, got " << describe(tv));
      VALR_CHECK(int64_t(tv.As<Napi::TypedArray>().ElementLength()) == numel(shape), Shape,
                 "argument '" << tag << "." << name << "' must have " << numel(shape) << " elements for shape "
                              << shapeString(shape) << ", got " << tv.As<Napi::TypedArray>().ElementLength());
    }
    // Optional `grad`: a caller-owned Float32Array to write the gradient into.
    Napi::Float32Array g;
    Napi::Value gv = e.Get("grad");
    if (gv.IsUndefined() || gv.IsNull()) {
      g = Napi::Float32Array::New(env, size_t(numel(shape)));
    } else {
      VALR_CHECK(gv.IsTypedArray() && gv.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
                     int64_t(gv.As<Napi::TypedArray>().ElementLength()) == numel(shape),
                 Shape, "argument '" << tag << ".grad' must be a Float32Array of " << numel(shape) << " elements, got "
                                     << describe(gv));
      g = gv.As<Napi::Float32Array>();
      const char* g0 = reinterpret_cast<const char*>(g.Data());
      for (Napi::Value iv : {predV, targetV}) {
        auto in = iv.As<Napi::TypedArray>();
        const char* i0 = static_cast<const char*>(in.ArrayBuffer().Data()) + in.ByteOffset();
        VALR_CHECK(g0 + g.ByteLength() <= i0 || i0 + in.ByteLength() <= g0 || numel(shape) == 0, Argument,
                   "argument '" << tag << ".grad' overlaps an input array");
      }
    }
    grads.Set(m, g);
    teachers.push_back(RepaTeacher{predV.As<Napi::Float32Array>().Data(), targetV.As<Napi::Float32Array>().Data(),
                                   g.Data(), shape[1], shape[2]});
  }
  const float* w = argWeights(info, 1, S);
  double gradScale = isAbsent(info, 2) ? 1.0 : argNumber(info, 2, "gradScale");
  RepaResult r = cpu::repaCosineLoss(teachers, S, w, gradScale);
  return lossResult(env, r, grads);
}

// tensorRepaCosineLoss(teachers: {pred: NativeTensor [S, P, D], target: NativeTensor}[], weights?, gradScale?)
//   -> { loss, perTeacher, gradPred: NativeTensor[] } on the inputs' device
Napi::Value TensorRepaCosineLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = argTeachers(info, 0);
  std::vector<RepaTeacher> teachers;
  Napi::Array grads = Napi::Array::New(env, list.Length());
  int64_t S = -1;
  Device device;
  for (uint32_t m = 0; m < list.Length(); ++m) {
    Napi::Object e = teacherEntry(list, m);
    std::string tag = "teachers[" + std::to_string(m) + "]";
    Napi::Value pv = e.Get("pred"), tv = e.Get("target");
    VALR_CHECK(pv.IsObject() && pv.As<Napi::Object>().InstanceOf(env.GetInstanceData<Napi::FunctionReference>()->Value()),
               Argument, "argument '" << tag << ".pred' must be a tensor, got " << describe(pv));
    VALR_CHECK(tv.IsObject() && tv.As<Napi::Object>().InstanceOf(env.GetInstanceData<Napi::FunctionReference>()->Value()),
               Argument, "argument '" << tag << ".target' must be a tensor, got " << describe(tv));
    NativeTensor* pred = Napi::ObjectWrap<NativeTensor>::Unwrap(pv.As<Napi::Object>());
    NativeTensor* target = Napi::ObjectWrap<NativeTensor>::Unwrap(tv.As<Napi::Object>());
    pred->expect((tag + ".pred").c_str(), DType::Float32);
    VALR_CHECK(pred->shape().size() == 3, Shape, "argument '" << tag << ".pred' must be [S, P, D], got "
                                                              << shapeString(pred->shape()));
    target->expect((tag + ".target").c_str(), DType::Float32, &pred->shape());
    if (m == 0) device = pred->device();
    checkSameDevice((tag + ".pred").c_str(), pred, device);
    checkSameDevice((tag + ".target").c_str(), target, device);
    VALR_CHECK(S < 0 || pred->shape()[0] == S, Shape, "argument '" << tag << ".pred' has S = " << pred->shape()[0]
                                                                   << " but teachers[0] has S = " << S);
    S = pred->shape()[0];
    auto storage = Storage::allocate(device, pred->nbytes());
    Napi::Object g = NativeTensor::New(env, storage, DType::Float32, pred->shape());
    grads.Set(m, g);
    teachers.push_back(RepaTeacher{static_cast<const float*>(pred->data()), static_cast<const float*>(target->data()),
                                   static_cast<float*>(storage->data()), pred->shape()[1], pred->shape()[2]});
  }
  const float* w = argWeights(info, 1, S);
  double gradScale = isAbsent(info, 2) ? 1.0 : argNumber(info, 2, "gradScale");
  selectDevice(device);
  RepaResult r = device.isCuda() ? cuda::repaCosineLoss(teachers, S, w, gradScale)
                                 : cpu::repaCosineLoss(teachers, S, w, gradScale);
  return lossResult(env, r, grads);
}

}  // namespace

void initAlignmentKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("tapGather", Napi::Function::New<guarded<TapGather>>(env, "tapGather"));
  exports.Set("tapScatter", Napi::Function::New<guarded<TapScatter>>(env, "tapScatter"));
  exports.Set("upsampleBilinear", Napi::Function::New<guarded<UpsampleBilinear>>(env, "upsampleBilinear"));
  exports.Set("upsampleBilinearBackward",
              Napi::Function::New<guarded<UpsampleBilinearBackward>>(env, "upsampleBilinearBackward"));
  exports.Set("repaCosineLoss", Napi::Function::New<guarded<RepaCosineLoss>>(env, "repaCosineLoss"));
  exports.Set("tensorTapGather", Napi::Function::New<guarded<TensorTapGather>>(env, "tensorTapGather"));
  exports.Set("tensorTapScatter", Napi::Function::New<guarded<TensorTapScatter>>(env, "tensorTapScatter"));
  exports.Set("tensorUpsampleBilinear", Napi::Function::New<guarded<TensorUpsampleBilinear>>(env, "tensorUpsampleBilinear"));
  exports.Set("tensorUpsampleBilinearBackward",
              Napi::Function::New<guarded<TensorUpsampleBilinearBackward>>(env, "tensorUpsampleBilinearBackward"));
  exports.Set("tensorRepaCosineLoss", Napi::Function::New<guarded<TensorRepaCosineLoss>>(env, "tensorRepaCosineLoss"));
}

}  // namespace js
}  // namespace valr
