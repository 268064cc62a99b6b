// The Markdown report of one experiment (the demo, `valr train`): the image-use gate first,
// then the arms, then, only when the baseline passed the gate, the comparison with it.
import { pairedInterval } from '../train/image-gate';
import type { ArmResult, ExperimentResult } from './experiment';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;

function table(rows: string[][]): string {
  return [rows[0], rows[0].map(() => '---'), ...rows.slice(1)].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Paired per-question accuracy difference arm - baseline, with a 95% bootstrap interval. */
export function pairedDifference(arm: ArmResult, baseline: ArmResult, seed = 0) {
  const ok = (a: ArmResult) => a.eval.predictions.map((p) => Number(p.answer === p.expected));
  const x = ok(arm), y = ok(baseline);
  return pairedInterval(x.map((v, i) => v - y[i]), seed);
}

/** The baseline arm: the first one trained without latents (vanilla SFT). */
export function baselineArm(r: ExperimentResult): ArmResult | undefined {
  return r.arms.find((a) => a.policy === 'off');
}

export function experimentReport(r: ExperimentResult): string {
  const out: string[] = [];
  const families = [...new Set(r.arms.flatMap((a) => Object.keys(a.eval.byFamily)))].sort();
  const views = [...new Set(r.arms.flatMap((a) => Object.keys(a.eval.byViews)))].sort((a, b) => Number(a) - Number(b));
  out.push('## Image-use gate', '');
  out.push(`Blind baseline (each family's most common training answer): **${pct(r.blind.accuracy)}** (${Object.entries(r.blind.byFamily).map(([f, a]) => `${f} ${pct(a)}`).join(', ')}).`);
  if (r.perception.steps) out.push(`Perception stage: ${r.perception.steps} steps, patch-kind accuracy ${Number.isFinite(r.perception.kindAccuracy) ? pct(r.perception.kindAccuracy) : 'n/a (resumed)'}.`);
  if (r.stage1.gate) out.push(`Stage-1 model: ${r.stage1.gate.verdict}`);
  out.push('');
  out.push(table([
    ['arm', 'accuracy', 'swapped images', 'drop [95% interval]', 'gate', 'step CE real / swapped', 'answer CE real / swapped', 'truncated'],
    ...r.arms.map((a) => [
      a.name, pct(a.eval.accuracy), pct(a.swapped.accuracy), `${pts(a.gate.drop.mean)} [${pts(a.gate.drop.lo)}, ${pts(a.gate.drop.hi)}]`, a.gate.passed ? 'passed' : '**failed**',
      `${a.gate.ceReal.steps.toFixed(3)} / ${a.gate.ceSwapped.steps.toFixed(3)}`, `${a.gate.ceReal.answer.toFixed(3)} / ${a.gate.ceSwapped.answer.toFixed(3)}`, String(a.eval.truncated ?? 0),
    ]),
  ]));
  out.push('', '## Accuracy by question family and number of views', '');
  out.push(table([
    ['arm', 'overall', ...families, ...views.map((v) => `${v} views`), 'latent segs/answer', 'stage-2 s'],
    ['blind baseline', pct(r.blind.accuracy), ...families.map((f) => (r.blind.byFamily[f] !== undefined ? pct(r.blind.byFamily[f]) : '-')), ...views.map(() => '-'), '-', '-'],
    ...r.arms.map((a) => [
      a.name, pct(a.eval.accuracy), ...families.map((f) => (a.eval.byFamily[f] ? pct(a.eval.byFamily[f].accuracy) : '-')),
      ...views.map((v) => (a.eval.byViews[v] ? pct(a.eval.byViews[v].accuracy) : '-')), a.eval.latentSegmentsPerSample.toFixed(2), a.trainSeconds.toFixed(0),
    ]),
  ]));
  const aligned = r.arms.filter((a) => a.alignment?.length);
  if (aligned.length) {
    out.push('', '## Alignment reached (held-out cosine of ψ to the standardised teacher targets)', '');
    out.push(table([['arm', 'teacher', 'cosine', 'best image-free prediction', 'above it'],
      ...aligned.flatMap((a) => a.alignment!.map((t) => [a.name, t.teacher, t.cosine.toFixed(3), t.baseline.toFixed(3), (t.cosine - t.baseline).toFixed(3)]))]));
  }
  out.push('', '## Comparison with vanilla SFT', '');
  const base = baselineArm(r);
  if (!base) out.push('No arm without latents was trained, so there is no baseline to compare with.');
  else if (!base.gate.passed) {
    out.push(`**No comparison is drawn.** The baseline (${base.name}) failed the image-use gate: it does not measurably use its images, so differences between arms say nothing about VaLR.`);
  } else {
    out.push(`Per-question paired differences against ${base.name} on the same ${base.eval.total} test questions (one seed; 95% bootstrap interval over questions):`, '');
    for (const a of r.arms.filter((x) => x !== base)) {
      const d = pairedDifference(a, base);
      const sign = d.lo > 0 ? 'better' : d.hi < 0 ? 'worse' : 'no measurable difference';
      out.push(`- ${a.name}: ${pts(d.mean)} points [${pts(d.lo)}, ${pts(d.hi)}]: ${sign}${a.gate.passed ? '' : ' (this arm itself failed the gate)'}`);
    }
  }
  return out.join('\n');
}
