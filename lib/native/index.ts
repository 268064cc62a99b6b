// The one loaded addon, loaded on first use so that importing the package is cheap
// and a missing binary surfaces as a clear error at the first call.
import type { BindingModule } from './binding';
import { loadBinding, type LoadReport } from './loader';

let loaded: { binding: BindingModule; report: LoadReport } | null = null;

export function native(): BindingModule {
  if (!loaded) loaded = loadBinding();
  return loaded.binding;
}

export function loadReport(): LoadReport {
  native();
  return loaded!.report;
}

export type { BindingModule, NativeTensor } from './binding';
