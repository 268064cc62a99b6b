// One init function per group of bindings; addon.cpp calls them all.
#pragma once
#include <napi.h>

namespace valr {
namespace js {

void initRuntime(Napi::Env env, Napi::Object exports);
void initTensorFactories(Napi::Env env, Napi::Object exports);
void initAlignmentKernels(Napi::Env env, Napi::Object exports);
void initElementwise(Napi::Env env, Napi::Object exports);
void initModelKernels(Napi::Env env, Napi::Object exports);
void initDecoderEngine(Napi::Env env, Napi::Object exports);

}  // namespace js
}  // namespace valr
