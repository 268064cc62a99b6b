// VaLR against vanilla SFT over several seeds (npm run bench:sft).
//   npx tsx bench/sft.bench.ts [--quick | --smoke] [--seeds 5] [--out bench/results] [--work DIR] [--resume] [--keep-data]
//
// Per seed: a fresh dataset (its own dataset seed), stage 0 (perception) and stage 1 (CoT SFT)
// once, then stage 2 for every arm from the same stage-1 weights with the same budget:
//   vanilla-sft        stage 2 continues plain CoT SFT (no latents)
//   valr-no-align      latents, no teacher, lambda 0
//   valr-s-geometry    latents + REPA to the geometry teacher
//   valr-s-appearance  latents + REPA to the appearance teacher
//   valr-m             latents + REPA to both
// Every arm is evaluated on the held-out test split with the image-use gate (real vs swapped
// images); latent arms with policy 'auto'. Some arms are also evaluated with the reasoning
// capped at N steps (test-time scaling). A second experiment per seed trains vanilla-sft and
// valr-m on a fraction of the training samples (data efficiency).
//
// The gate comes first: the comparison with vanilla SFT is drawn over all seeds only when
// vanilla SFT passed the gate in every seed, over the passing seeds when it passed in a
// majority, and not at all otherwise (lib/pipeline/stats.ts: comparisonScope).
//
// Writes <out>/sft-<full|quick|smoke>.json (plan, machine, per-seed results with per-question
// correctness as 0/1 strings, aggregates), .md (the report) and three SVG plots.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makeDataset, type Sample } from '../lib/data/dataset';
import { FAMILIES, type Family } from '../lib/data/questions';
import { demoPlan } from '../lib/pipeline/demo';
import { runExperiment, type ArmResult, type ArmSpec, type ExperimentResult } from '../lib/pipeline/experiment';
import { lineChartSvg, type Series } from '../lib/pipeline/plot';
import {
  comparisonScope, encodeCorrectness, mean, meanStd, pooledPairedInterval, seedPairedDifference, verdict,
  type ComparisonScope, type Interval, type MeanStd,
} from '../lib/pipeline/stats';
import { defaultDevice, numThreads } from '../lib/runtime';
import type { EvalResult } from '../lib/train/evaluate';
import type { TrainConfig } from '../lib/train/config';

// ================================ plan: the numbers to tune ================================
type Size = 'full' | 'quick' | 'smoke';
const plan = {
  /** seeds when --seeds is not given */
  seeds: { full: 5, quick: 5, smoke: 2 } as Record<Size, number>,
  /** seed s uses dataset seed datasetSeedBase + s and config seed s */
  datasetSeedBase: 1234,
  /** the regime where the mechanism can matter: many views per question, all five families */
  numViews: [2, 4, 6, 8],
  families: [...FAMILIES] as Family[],
  /** data sizes and training config per size (full/quick: the demo's, with a larger test split) */
  sizes: {
    full: () => { const d = demoPlan(false); return { data: { ...d.data, test: 300 }, config: d.config }; },
    // quick: sized so that 5 seeds (7 stage-2 runs and ~25 evaluations each) fit in about an hour on 2 cores
    quick: () => { const d = demoPlan(true); return { data: { ...d.data, train: 1500, test: 120 }, config: d.config }; },
    smoke: () => {
      const d = demoPlan(true);
      return {
        data: { train: 60, val: 4, test: 20 },
        config: {
          ...d.config, perception: { ...d.config.perception, steps: 20 },
          stage1: { ...d.config.stage1, epochs: 1 }, stage2: { ...d.config.stage2, epochs: 1 },
        },
      };
    },
  } as Record<Size, () => { data: { train: number; val: number; test: number }; config: TrainConfig }>,
  /** the arms, all from the same stage-1 weights with the same stage-2 budget; the first is the baseline */
  arms: [
    { name: 'vanilla-sft', latents: false, teachers: [] },
    { name: 'valr-no-align', latents: true, teachers: [], config: { lambda: 0 }, evalPolicies: ['auto'] },
    { name: 'valr-s-geometry', latents: true, teachers: [{ kind: 'geometry' }], evalPolicies: ['auto'] },
    { name: 'valr-s-appearance', latents: true, teachers: [{ kind: 'appearance' }], evalPolicies: ['auto'] },
    { name: 'valr-m', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], evalPolicies: ['auto'] },
  ] as ArmSpec[],
  /** test-time scaling: these arms are also evaluated with at most N reasoning steps */
  stepCaps: [1, 2, 4],
  cappedArms: ['vanilla-sft', 'valr-m'],
  /** data efficiency: these arms again, trained (stages 0-2) on this fraction of the training samples */
  efficiency: { fraction: 0.5, arms: ['vanilla-sft', 'valr-m'] },
};
// ============================================================================================

const BASELINE = plan.arms[0].name;
const USAGE = 'usage: npx tsx bench/sft.bench.ts [--quick | --smoke] [--seeds N] [--out DIR] [--work DIR] [--resume] [--keep-data]';

function parseArgs(argv: string[]) {
  const o = { size: 'full' as Size, seeds: NaN, out: path.join(__dirname, 'results'), work: '', resume: false, keepData: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--quick' || a === '--smoke') {
      if (o.size !== 'full') throw new Error(`--quick and --smoke exclude each other\n${USAGE}`);
      o.size = a === '--quick' ? 'quick' : 'smoke';
    } else if (a === '--seeds') o.seeds = Number(value());
    else if (a === '--out') o.out = path.resolve(value());
    else if (a === '--work') o.work = path.resolve(value());
    else if (a === '--resume') o.resume = true;
    else if (a === '--keep-data') o.keepData = true;
    else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument '${a}'\n${USAGE}`);
  }
  if (Number.isNaN(o.seeds)) o.seeds = plan.seeds[o.size];
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new Error(`--seeds must be a positive integer\n${USAGE}`);
  if (!o.work) o.work = path.join(os.tmpdir(), `valr-sft-bench-${o.size}`);
  return o;
}

const args = process.argv.slice(2);
const opts = parseArgs(args);
const TAG = `sft-${opts.size}`;
const sized = plan.sizes[opts.size]();
const effTrain = Math.round(sized.data.train * plan.efficiency.fraction);
const mainArms: ArmSpec[] = plan.arms.map((a) => (plan.cappedArms.includes(a.name) ? { ...a, evalStepCaps: plan.stepCaps } : a));
const effArms: ArmSpec[] = plan.arms.filter((a) => plan.efficiency.arms.includes(a.name));
/** what the JSON records as the plan (and what --resume checks a stored seed against) */
const resolvedPlan = {
  size: opts.size, datasetSeedBase: plan.datasetSeedBase, numViews: plan.numViews, families: plan.families, data: sized.data,
  config: sized.config, arms: mainArms, efficiency: { ...plan.efficiency, trainSamples: effTrain },
};

interface SeedRun {
  seed: number;
  datasetSeed: number;
  seconds: number;
  /** the test questions in the order of the per-question results (for re-analysis) */
  questions: { id: string; family: string; numViews: number; answer: string }[];
  main: ExperimentResult;
  efficiency: ExperimentResult;
}

// ------------------------------------------------------------------------------------------
// formatting

const num = (x: number, d = 1) => (Number.isFinite(x) ? (x * 100).toFixed(d) : 'n/a');
/** signed points (x in [-1, 1] -> -100..100); a value that rounds to 0 gets no sign */
function pts(x: number, scale = 100, digits = 1): string {
  if (!Number.isFinite(x)) return 'n/a';
  const s = Math.abs(x * scale).toFixed(digits);
  return Number(s) === 0 ? s : `${x > 0 ? '+' : '−'}${s}`;
}
const pm = (m: MeanStd) => (Number.isFinite(m.std) ? `${num(m.mean)} ± ${num(m.std)}` : num(m.mean));
const ci = (i: Interval) => (Number.isFinite(i.lo) ? `${pts(i.mean)} [${pts(i.lo)}, ${pts(i.hi)}]` : `${pts(i.mean)} [n/a]`);
const seedList = (xs: number[]) => xs.map((s) => `seed ${s}`).join(', ');
const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;

function table(rows: string[][]): string {
  return [rows[0], rows[0].map(() => '---'), ...rows.slice(1)].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

// ------------------------------------------------------------------------------------------
// per-seed access

function armOf(r: ExperimentResult, name: string): ArmResult {
  return r.arms.find((a) => a.name === name) ?? (() => { throw new Error(`arm '${name}' missing from a result`); })();
}
const correct = (e: EvalResult) => e.predictions.map((p) => Number(p.answer === p.expected));
const tally = (e: EvalResult, key: 'byViews' | 'byFamily', k: string) => e[key][k]?.accuracy ?? NaN;

interface Comparison {
  /** per-seed differences arm - baseline and their 95% t-interval over the scope's seeds */
  seeds: ReturnType<typeof seedPairedDifference>;
  /** per-question paired bootstrap pooled over the scope's seeds */
  pooled: ReturnType<typeof pooledPairedInterval>;
  verdict: ReturnType<typeof verdict>;
}

function compare(results: ExperimentResult[], scope: ComparisonScope, arm: string, base = BASELINE, pick: (a: ArmResult) => EvalResult = (a) => a.eval): Comparison | undefined {
  if (scope.mode === 'none') return undefined;
  const rs = scope.seeds.map((s) => results[s]);
  const seeds = seedPairedDifference(rs.map((r) => pick(armOf(r, arm)).accuracy), rs.map((r) => pick(armOf(r, base)).accuracy));
  const pooled = pooledPairedInterval(rs.map((r) => correct(pick(armOf(r, arm)))), rs.map((r) => correct(pick(armOf(r, base)))), 17);
  return { seeds, pooled, verdict: verdict(seeds) };
}

/** The same, per number of views: the paired difference on each seed's questions with that many views. */
function compareByViews(results: ExperimentResult[], scope: ComparisonScope, arm: string, views: string) {
  if (scope.mode === 'none') return undefined;
  const rs = scope.seeds.map((s) => results[s]);
  return seedPairedDifference(rs.map((r) => tally(armOf(r, arm).eval, 'byViews', views)), rs.map((r) => tally(armOf(r, BASELINE).eval, 'byViews', views)));
}

// ------------------------------------------------------------------------------------------
// aggregation

function aggregate(runs: SeedRun[]) {
  const main = runs.map((r) => r.main);
  const eff = runs.map((r) => r.efficiency);
  const scope = comparisonScope(main.map((r) => armOf(r, BASELINE).gate.passed));
  const effScope = comparisonScope(eff.map((r) => armOf(r, BASELINE).gate.passed));
  const families = plan.families.filter((f) => main.some((r) => armOf(r, BASELINE).eval.byFamily[f]));
  const views = plan.numViews.map(String).filter((v) => main.some((r) => armOf(r, BASELINE).eval.byViews[v]));
  const arms = mainArms.map((spec) => {
    const per = main.map((r) => armOf(r, spec.name));
    const teachers = per[0].alignment?.map((t) => t.teacher) ?? [];
    return {
      name: spec.name,
      accuracy: meanStd(per.map((a) => a.eval.accuracy)),
      swapped: meanStd(per.map((a) => a.swapped.accuracy)),
      gatePassed: per.map((a) => a.gate.passed),
      latentSegmentsPerAnswer: mean(per.map((a) => a.eval.latentSegmentsPerSample)),
      truncated: mean(per.map((a) => a.eval.truncated)),
      stage2Seconds: mean(per.map((a) => a.trainSeconds)),
      byFamily: Object.fromEntries(families.map((f) => [f, meanStd(per.map((a) => tally(a.eval, 'byFamily', f)))])),
      byViews: Object.fromEntries(views.map((v) => [v, meanStd(per.map((a) => tally(a.eval, 'byViews', v)))])),
      capped: spec.evalStepCaps ? Object.fromEntries(spec.evalStepCaps.map((c) => [String(c), meanStd(per.map((a) => a.capped![c].accuracy))])) : undefined,
      alignment: teachers.map((teacher, i) => ({
        teacher,
        cosine: meanStd(per.map((a) => a.alignment![i].cosine)),
        baseline: meanStd(per.map((a) => a.alignment![i].baseline)),
        aboveBaseline: meanStd(per.map((a) => a.alignment![i].cosine - a.alignment![i].baseline)),
        seedsAbove: per.filter((a) => a.alignment![i].cosine > a.alignment![i].baseline).length,
      })),
      vsBaseline: spec.name === BASELINE ? undefined : compare(main, scope, spec.name),
      vsBaselineByViews: spec.name === BASELINE ? undefined : Object.fromEntries(views.map((v) => [v, compareByViews(main, scope, spec.name, v)])),
      vsBaselineCapped: spec.name === BASELINE || !spec.evalStepCaps || !mainArms[0].evalStepCaps ? undefined
        : Object.fromEntries(spec.evalStepCaps.map((c) => [String(c), compare(main, scope, spec.name, BASELINE, (a) => a.capped![c])])),
    };
  });
  const noAlign = plan.arms.find((a) => a.name === 'valr-no-align') ? 'valr-no-align' : undefined;
  const alignmentEffect = noAlign
    ? mainArms.filter((a) => a.latents && a.teachers.length).map((a) => ({ arm: a.name, vsNoAlign: compare(main, scope, a.name, noAlign) }))
    : [];
  const efficiency = {
    trainSamples: effTrain,
    fullSamples: sized.data.train,
    baselineGate: eff.map((r) => armOf(r, BASELINE).gate.passed),
    scope: effScope,
    arms: effArms.map((a) => ({
      name: a.name,
      reduced: meanStd(eff.map((r) => armOf(r, a.name).eval.accuracy)),
      full: meanStd(main.map((r) => armOf(r, a.name).eval.accuracy)),
      reducedVsBaseline: a.name === BASELINE ? undefined : compare(eff, effScope, a.name),
      fullVsBaseline: a.name === BASELINE ? undefined : compare(main, scope, a.name),
    })),
  };
  const blind = { accuracy: meanStd(main.map((r) => r.blind.accuracy)), byFamily: Object.fromEntries(families.map((f) => [f, meanStd(main.map((r) => r.blind.byFamily[f] ?? NaN))])) };
  return { scope, families, views, blind, arms, alignmentEffect, efficiency };
}
type Aggregate = ReturnType<typeof aggregate>;

// ------------------------------------------------------------------------------------------
// the report

interface Meta {
  command: string;
  commit: string;
  dirty: boolean;
  date: string;
  cpu: string;
  cores: number;
  threads: number;
  device: string;
  node: string;
  loadStart: number[];
  loadEnd: number[];
  minutes: number;
}

function report(runs: SeedRun[], agg: Aggregate, meta: Meta): string {
  const out: string[] = [];
  const n = runs.length;
  const { scope } = agg;
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const interpretable = scope.mode !== 'none';
  const rawLabel = interpretable ? '' : ' — raw numbers, not interpretable as a VaLR-vs-SFT comparison';
  out.push(`# VaLR vs vanilla SFT: ${opts.size}, ${n} seed${n > 1 ? 's' : ''}`, '');
  out.push(`- Command: \`${meta.command}\``);
  out.push(`- Commit: ${meta.commit}${meta.dirty ? ' (working tree had uncommitted changes)' : ''}; ${meta.date}; ${meta.minutes.toFixed(1)} min in all`);
  out.push(`- Machine: ${meta.cpu}, ${meta.cores} cores, ${meta.threads} thread(s) (VALR_NUM_THREADS=${process.env.VALR_NUM_THREADS ?? 'unset'}), device ${meta.device}, Node ${meta.node}`);
  out.push(`- Load average (1 / 5 / 15 min): ${la(meta.loadStart)} at the start, ${la(meta.loadEnd)} at the end`);
  const c = sized.config;
  out.push(`- Data per seed: ${sized.data.train} train / ${sized.data.test} test samples (held-out scenes), ${plan.numViews.join('/')} views per question, families ${plan.families.join(', ')}; dataset seed ${plan.datasetSeedBase} + seed`);
  out.push(`- Training: preset ${c.preset}, K ${c.K}, perception ${c.perception.steps} steps, stage 1 ${c.stage1.epochs} epoch(s) at lr ${c.stage1.lr}, stage 2 ${c.stage2.epochs} epoch(s) at lr ${c.stage2.lr} (projectors ${c.stage2.projectorLr}), lambda ${c.lambda}; every arm from the same stage-1 weights with the same stage-2 budget; latent arms evaluated with policy 'auto'`);
  out.push('');

  // The gate.
  out.push('## 1. Image-use gate (vanilla SFT, per seed)', '');
  out.push('Accuracy with the real images vs with every question\'s images swapped for another test question\'s (same number of views); the gate passes when the 95% interval of the paired drop lies above 0. Blind baseline: each family\'s most common training answer.', '');
  out.push(table([
    ['seed', 'blind baseline', 'perception patch-kind acc.', 'stage-1 gate', 'accuracy', 'swapped images', 'drop [95%]', 'step CE real / swapped', 'answer CE real / swapped', 'vanilla-sft gate'],
    ...runs.map((r) => {
      const b = armOf(r.main, BASELINE), g = b.gate;
      return [
        String(r.seed), `${num(r.main.blind.accuracy)}%`, Number.isFinite(r.main.perception.kindAccuracy) ? `${num(r.main.perception.kindAccuracy)}%` : 'n/a',
        r.main.stage1.gate ? (r.main.stage1.gate.passed ? 'passed' : 'failed') : 'n/a',
        `${num(b.eval.accuracy)}%`, `${num(b.swapped.accuracy)}%`, `${pts(g.drop.mean)} [${pts(g.drop.lo)}, ${pts(g.drop.hi)}]`,
        `${g.ceReal.steps.toFixed(3)} / ${g.ceSwapped.steps.toFixed(3)}`, `${g.ceReal.answer.toFixed(3)} / ${g.ceSwapped.answer.toFixed(3)}`, g.passed ? 'passed' : '**failed**',
      ];
    }),
  ]));
  out.push('');
  out.push(`**vanilla-sft passed the gate in ${scope.passed} of ${scope.total} seeds.** ${scopeSentence(scope)}`, '');

  // The main table.
  out.push(`## 2. Accuracy over seeds${rawLabel}`, '');
  out.push(`Test accuracy in %, mean ± sample standard deviation over all ${n} seeds. ` +
    (interpretable ? `Δ: the paired difference arm − ${BASELINE} in points, per seed on the same test questions, with its 95% Student-t interval over ${scope.seeds.length} seed(s)${scope.mode === 'passing' ? ` (${seedList(scope.seeds)}, where ${BASELINE} passed the gate)` : ''}; pooled: per-question paired differences over those seeds' questions with a 95% bootstrap interval (ignores seed-to-seed training variance, so narrower).` : ''), '');
  const head = ['arm', 'accuracy', 'swapped images', 'gate passed', ...(interpretable ? [`Δ vs ${BASELINE} [95% t]`, 'verdict (t)', 'pooled Δ [95% bootstrap]'] : []), 'latent segs/answer', 'truncated answers', 'stage-2 s'];
  out.push(table([
    head,
    ['blind baseline', pm(agg.blind.accuracy), '-', '-', ...(interpretable ? ['-', '-', '-'] : []), '-', '-', '-'],
    ...agg.arms.map((a) => [
      a.name, pm(a.accuracy), pm(a.swapped), `${a.gatePassed.filter(Boolean).length}/${n}`,
      ...(interpretable ? (a.vsBaseline ? [ci(a.vsBaseline.seeds), a.vsBaseline.verdict, ci(a.vsBaseline.pooled)] : ['(baseline)', '-', '-']) : []),
      a.latentSegmentsPerAnswer.toFixed(2), a.truncated.toFixed(1), a.stage2Seconds.toFixed(0),
    ]),
  ]));
  out.push('');

  out.push(`### By question family (%, mean ± std over ${n} seeds)${rawLabel}`, '');
  out.push(table([
    ['arm', ...agg.families],
    ['blind baseline', ...agg.families.map((f) => pm(agg.blind.byFamily[f]))],
    ...agg.arms.map((a) => [a.name, ...agg.families.map((f) => pm(a.byFamily[f]))]),
  ]));
  out.push('');
  out.push(`### By number of views = reasoning steps (%, mean ± std over ${n} seeds)${rawLabel}`, '');
  out.push(table([['arm', ...agg.views.map((v) => `${v} views`)], ...agg.arms.map((a) => [a.name, ...agg.views.map((v) => pm(a.byViews[v]))])]));
  if (interpretable) {
    out.push('', `Δ vs ${BASELINE} by number of views (points, 95% t-interval over ${scope.seeds.length} seed(s)):`, '');
    out.push(table([['arm', ...agg.views.map((v) => `${v} views`)], ...agg.arms.filter((a) => a.vsBaselineByViews).map((a) => [a.name, ...agg.views.map((v) => ci(a.vsBaselineByViews![v]!))])]));
  }
  out.push('');

  const aligned = agg.arms.filter((a) => a.alignment.length);
  if (aligned.length) {
    out.push(`## 3. Alignment reached (held-out cosine of ψ to the standardised teacher targets, mean ± std over ${n} seeds)`, '');
    out.push('Image-free baseline: what the best prediction that ignores the image (each position\'s mean direction) scores on the same targets.', '');
    out.push(table([
      ['arm', 'teacher', 'cosine', 'image-free baseline', 'cosine − baseline', 'seeds above baseline'],
      ...aligned.flatMap((a) => a.alignment.map((t) => [a.name, t.teacher, Number.isFinite(t.cosine.std) ? `${t.cosine.mean.toFixed(3)} ± ${t.cosine.std.toFixed(3)}` : t.cosine.mean.toFixed(3), t.baseline.mean.toFixed(3), pts(t.aboveBaseline.mean, 1, 3), `${t.seedsAbove}/${n}`])),
    ]));
    out.push('');
  }

  const capped = agg.arms.filter((a) => a.capped);
  if (capped.length) {
    out.push(`## 4. Test-time scaling: accuracy with at most N reasoning steps (%, mean ± std over ${n} seeds)${rawLabel}`, '');
    out.push(`Questions have ${plan.numViews.join('/')} views, one reasoning step per view: a cap below a question's view count cuts its reasoning short.`, '');
    out.push(table([['arm', ...plan.stepCaps.map((s) => `N = ${s}`), 'unlimited'], ...capped.map((a) => [a.name, ...plan.stepCaps.map((s) => pm(a.capped![s])), pm(a.accuracy)])]));
    if (interpretable) {
      out.push('', `Δ vs ${BASELINE} at each cap (points, 95% t-interval over ${scope.seeds.length} seed(s)):`, '');
      out.push(table([['arm', ...plan.stepCaps.map((s) => `N = ${s}`), 'unlimited'],
        ...capped.filter((a) => a.vsBaselineCapped).map((a) => [a.name, ...plan.stepCaps.map((s) => ci(a.vsBaselineCapped![s]!.seeds)), ci(a.vsBaseline!.seeds)])]));
    }
    out.push('');
  }

  const e = agg.efficiency;
  const effOk = e.scope.mode !== 'none';
  out.push(`## 5. Data efficiency: ${e.trainSamples} vs ${e.fullSamples} training samples (%, mean ± std over ${n} seeds)`, '');
  out.push(`The ${e.trainSamples}-sample runs are separate experiments (perception, stage 1 and stage 2 on the first ${e.trainSamples} training samples, same test split). ${BASELINE} passed the gate there in ${e.scope.passed} of ${e.scope.total} seeds${e.scope.failed.length ? ` (failed: ${seedList(e.scope.failed)})` : ''}.`, '');
  out.push(table([
    ['arm', `${e.trainSamples} samples`, `${e.fullSamples} samples`],
    ...e.arms.map((a) => [a.name, pm(a.reduced), pm(a.full)]),
    ...e.arms.filter((a) => a.name !== BASELINE).map((a) => [
      `Δ ${a.name} − ${BASELINE} [95% t]`,
      effOk && a.reducedVsBaseline ? `${ci(a.reducedVsBaseline.seeds)} (n = ${e.scope.seeds.length})` : 'not compared (gate)',
      interpretable && a.fullVsBaseline ? `${ci(a.fullVsBaseline.seeds)} (n = ${scope.seeds.length})` : 'not compared (gate)',
    ]),
  ]));
  out.push('');

  out.push('## 6. What this shows', '');
  out.push(whatThisShows(runs, agg).join('\n'));
  out.push('');
  out.push(`Plots: ${TAG}-views.svg (accuracy by number of views), ${TAG}-step-cap.svg (test-time scaling), ${TAG}-data-efficiency.svg. Per-seed results with per-question correctness (\`perQuestion\`: 0/1 strings in the order of each seed's \`questions\`): ${TAG}.json.`);
  return out.join('\n') + '\n';
}

function scopeSentence(scope: ComparisonScope): string {
  if (scope.mode === 'all') return `The comparison below uses all ${scope.total} seeds.`;
  if (scope.mode === 'passing') return `It failed in ${seedList(scope.failed)}: the comparison below uses only the ${scope.seeds.length} passing seeds (${seedList(scope.seeds)}).`;
  return `That is not a majority: vanilla SFT does not reliably use its images here, so **no VaLR-vs-SFT conclusion is drawn** from this run. The tables below are raw numbers and are not interpretable as a comparison.`;
}

function whatThisShows(runs: SeedRun[], agg: Aggregate): string[] {
  const n = runs.length;
  const { scope } = agg;
  const lines: string[] = [];
  const base = agg.arms.find((a) => a.name === BASELINE)!;
  lines.push(`- ${BASELINE} passed the image-use gate in ${scope.passed} of ${n} seeds${scope.failed.length ? ` (failed: ${seedList(scope.failed)})` : ''}; its accuracy was ${pm(base.accuracy)}% with real images, ${pm(base.swapped)}% with swapped images, blind baseline ${pm(agg.blind.accuracy)}%.`);
  if (scope.mode === 'none') {
    lines.push(`- **No VaLR-vs-SFT conclusion is drawn**: the baseline passed the gate in ${scope.passed} of ${n} seeds, not a majority, so differences between arms say nothing about VaLR.`);
    return lines;
  }
  const over = scope.mode === 'all' ? `over ${scope.seeds.length} seeds` : `over the ${scope.seeds.length} seeds where ${BASELINE} passed the gate`;
  for (const a of agg.arms.filter((x) => x.vsBaseline)) {
    const v = a.vsBaseline!;
    const failed = a.gatePassed.filter((p) => !p).length;
    lines.push(`- ${a.name} − ${BASELINE}: ${ci(v.seeds)} points (95% t-interval ${over}): ${v.verdict}; pooled per-question ${ci(v.pooled)} over ${v.pooled.n} questions.${failed ? ` ${a.name} itself failed the gate in ${failed} of ${n} seeds.` : ''}`);
  }
  for (const x of agg.alignmentEffect.filter((y) => y.vsNoAlign)) {
    lines.push(`- Alignment on top of latents, ${x.arm} − valr-no-align: ${ci(x.vsNoAlign!.seeds)} points (95% t-interval ${over}): ${x.vsNoAlign!.verdict}.`);
  }
  const m = agg.arms.find((a) => a.name === 'valr-m');
  if (m?.vsBaselineByViews && agg.views.length > 1) {
    const lo = agg.views[0], hi = agg.views[agg.views.length - 1];
    lines.push(`- valr-m − ${BASELINE} by number of views: ${lo} views ${ci(m.vsBaselineByViews[lo]!)}, ${hi} views ${ci(m.vsBaselineByViews[hi]!)} points.`);
  }
  for (const a of agg.arms.filter((x) => x.alignment.length)) {
    lines.push(`- ${a.name} alignment: ${a.alignment.map((t) => `${t.teacher} cosine ${t.cosine.mean.toFixed(3)} vs ${t.baseline.mean.toFixed(3)} image-free (above it in ${t.seedsAbove}/${n} seeds)`).join('; ')}.`);
  }
  const capped = agg.arms.filter((a) => a.capped);
  if (capped.length) {
    const first = plan.stepCaps[0], last = plan.stepCaps[plan.stepCaps.length - 1];
    lines.push(`- Accuracy with at most ${first} → ${last} reasoning steps → unlimited: ${capped.map((a) => `${a.name} ${num(a.capped![first].mean)} → ${num(a.capped![last].mean)} → ${num(a.accuracy.mean)}%`).join('; ')}.`);
  }
  const e = agg.efficiency;
  for (const a of e.arms.filter((x) => x.reducedVsBaseline)) {
    lines.push(`- With ${e.trainSamples} training samples, ${a.name} − ${BASELINE}: ${ci(a.reducedVsBaseline!.seeds)} points (${e.scope.seeds.length} seeds): ${a.reducedVsBaseline!.verdict}.`);
  }
  if (e.scope.mode === 'none') lines.push(`- With ${e.trainSamples} training samples ${BASELINE} passed the gate in ${e.scope.passed} of ${n} seeds: no comparison is drawn there.`);
  return lines;
}

// ------------------------------------------------------------------------------------------
// plots

function plots(agg: Aggregate) {
  const write = (series: Series[], title: string, xLabel: string, file: string) =>
    fs.writeFileSync(path.join(opts.out, file), lineChartSvg(series, { title, xLabel, yLabel: `test accuracy (mean of ${agg.scope.total} seeds)` }));
  write(agg.arms.map((a) => ({ name: a.name, points: agg.views.map((v) => ({ x: Number(v), y: a.byViews[v].mean })) })),
    'Accuracy against number of views', 'views = reasoning steps per question', `${TAG}-views.svg`);
  write(agg.arms.filter((a) => a.capped).map((a) => ({ name: a.name, points: plan.stepCaps.map((s) => ({ x: s, y: a.capped![s].mean })) })),
    'Test-time scaling: at most N reasoning steps', 'N (reasoning-step cap)', `${TAG}-step-cap.svg`);
  write(agg.efficiency.arms.map((a) => ({ name: a.name, points: [{ x: agg.efficiency.trainSamples, y: a.reduced.mean }, { x: agg.efficiency.fullSamples, y: a.full.mean }] })),
    'Data efficiency', 'training samples', `${TAG}-data-efficiency.svg`);
}

// ------------------------------------------------------------------------------------------
// JSON: results without per-question predictions, but with per-question correctness

function compactResults(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => {
    if (v && typeof v === 'object' && Array.isArray((v as EvalResult).predictions)) {
      const { predictions, ...rest } = v as EvalResult;
      return { ...rest, perQuestion: encodeCorrectness(predictions.map((p) => p.answer === p.expected)) };
    }
    return typeof v === 'number' && !Number.isFinite(v) ? null : v;
  }));
}

// ------------------------------------------------------------------------------------------

function git(...a: string[]): string {
  const r = spawnSync('git', a, { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  return r.status === 0 ? r.stdout.trim() : '';
}

async function runSeed(seed: number, log: (l: string) => void): Promise<SeedRun> {
  const dir = path.join(opts.work, `seed-${seed}`);
  const store = path.join(dir, 'result.json');
  const key = JSON.stringify({ ...resolvedPlan, seed });
  if (opts.resume && fs.existsSync(store)) {
    const saved = JSON.parse(fs.readFileSync(store, 'utf8'));
    if (saved.key === key) {
      log(`results of seed ${seed} loaded from ${store} (--resume)`);
      return saved.run as SeedRun;
    }
    log(`${store} was made with another plan: seed ${seed} runs again`);
  }
  const started = Date.now();
  const datasetSeed = plan.datasetSeedBase + seed;
  const dataDir = path.join(dir, 'data');
  const config = { ...sized.config, seed };
  log(`making data (dataset seed ${datasetSeed}): ${sized.data.train} train / ${sized.data.test} test samples, ${plan.numViews.join('/')} views`);
  await makeDataset({ dir: dataDir, seed: datasetSeed, ...sized.data, numViews: plan.numViews, families: plan.families });
  const questions = fs.readFileSync(path.join(dataDir, 'test.jsonl'), 'utf8').split('\n').filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Sample).map((q) => ({ id: q.id, family: q.family, numViews: q.numViews, answer: q.answer }));
  const main = await runExperiment({ dataDir, outDir: path.join(dir, 'main'), config, arms: mainArms, log, resume: opts.resume });
  log(`main experiment done (${minutes((Date.now() - started) / 1000)}); data efficiency: ${effArms.map((a) => a.name).join(', ')} on ${effTrain} training samples`);
  const efficiency = await runExperiment({ dataDir, outDir: path.join(dir, `train-${effTrain}`), config, arms: effArms, trainSamples: effTrain, log, resume: opts.resume });
  if (main.stopped || efficiency.stopped) throw new Error(`seed ${seed}: an experiment stopped early`);
  const run: SeedRun = { seed, datasetSeed, seconds: (Date.now() - started) / 1000, questions, main, efficiency };
  fs.writeFileSync(store, JSON.stringify({ key, run }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
  if (!opts.keepData) fs.rmSync(dataDir, { recursive: true, force: true });
  return run;
}

async function main() {
  const started = Date.now();
  const loadStart = os.loadavg();
  const command = ['npx tsx bench/sft.bench.ts', ...args].join(' ');
  const elapsed = () => minutes((Date.now() - started) / 1000);
  process.stderr.write(`${command}\n${opts.seeds} seed(s), ${opts.size} plan: ${sized.data.train} train / ${sized.data.test} test samples, arms ${mainArms.map((a) => a.name).join(', ')}; work dir ${opts.work}\n`);
  fs.mkdirSync(opts.work, { recursive: true });
  const runs: SeedRun[] = [];
  for (let seed = 0; seed < opts.seeds; seed++) {
    const prefix = () => `[seed ${seed + 1}/${opts.seeds} | ${elapsed()}] `;
    const log = (l: string) => process.stderr.write(prefix() + l + '\n');
    log('starting');
    const run = await runSeed(seed, log);
    runs.push(run);
    const perSeed = mean(runs.map((r) => r.seconds));
    log(`seed done in ${minutes(run.seconds)}: ${mainArms.map((a) => `${a.name} ${num(armOf(run.main, a.name).eval.accuracy)}%`).join(', ')}; vanilla-sft gate ${armOf(run.main, BASELINE).gate.passed ? 'passed' : 'FAILED'}` +
      (seed + 1 < opts.seeds ? `; about ${minutes(perSeed * (opts.seeds - seed - 1))} to go` : ''));
  }
  const agg = aggregate(runs);
  const meta: Meta = {
    command, commit: git('rev-parse', 'HEAD') || 'unknown', dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    date: new Date().toISOString(), cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, threads: numThreads(), device: defaultDevice(),
    node: process.version, loadStart, loadEnd: os.loadavg(), minutes: (Date.now() - started) / 60000,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const md = report(runs, agg, meta);
  const json = {
    ...meta, plan: resolvedPlan, seeds: opts.seeds,
    runs: compactResults(runs),
    aggregates: compactResults(agg),
  };
  fs.writeFileSync(path.join(opts.out, `${TAG}.json`), JSON.stringify(json, null, 1));
  fs.writeFileSync(path.join(opts.out, `${TAG}.md`), md);
  plots(agg);
  console.log(md);
  process.stderr.write(`wrote ${path.join(opts.out, `${TAG}.json`)}, ${TAG}.md and ${TAG}-{views,step-cap,data-efficiency}.svg (${elapsed()})\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
