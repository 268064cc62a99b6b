#include "bindings.h"
namespace valr { namespace js {
void initAlignmentKernels(Napi::Env, Napi::Object) {}
} }
