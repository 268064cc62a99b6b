// Learning rate over the steps of a stage: linear warm-up, then cosine decay to 10%.
export function learningRate(base: number, step: number, totalSteps: number, warmupRatio: number): number {
  const warm = Math.max(1, Math.round(totalSteps * warmupRatio));
  if (step < warm) return (base * (step + 1)) / warm;
  const t = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
  return base * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * t)));
}
