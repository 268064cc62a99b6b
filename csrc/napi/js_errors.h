// Converting native failures into JS errors with a `code` property. Every binding
// runs its body through guard(): valr::Error keeps its code, std::bad_alloc becomes
// ERR_VALR_OOM, anything else ERR_VALR_INTERNAL. Nothing escapes as a C++ exception.
#pragma once
#include <napi.h>
#include <new>
#include "../core/error.h"

namespace valr {
namespace js {

inline Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

template <class F>
Napi::Value guard(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw makeError(env, errorCodeName(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw makeError(env, "ERR_VALR_OOM", "out of host memory");
  } catch (const std::exception& e) {
    throw makeError(env, "ERR_VALR_INTERNAL", std::string("internal error: ") + e.what());
  }
}

// Wraps a free function `F(const CallbackInfo&)` as a guarded N-API callback.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return F(info); });
}

}  // namespace js
}  // namespace valr
