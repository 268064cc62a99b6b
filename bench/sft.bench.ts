// Accuracy benchmark: VaLR against vanilla SFT (issue 7).
//   npx tsx bench/sft.bench.ts [--quick] [--seeds 3] [--out bench/results]
// Every arm of a seed starts from the same stage-1 checkpoint and gets the same stage-2
// budget: vanilla SFT, VaLR without alignment (latents, lambda = 0), VaLR-S with each
// single teacher, VaLR-M with all teachers, the own-vision-tower teacher, and the
// tap-layer ablation (front / middle / last). Measured on held-out scenes: accuracy
// overall, per family and per reasoning length; accuracy with generation capped at N
// reasoning steps (test-time scaling); and accuracy against training-set size (data
// efficiency, vanilla SFT vs VaLR-M). Writes JSON, a Markdown table and SVG plots.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makeDataset } from '../lib/data/dataset';
import { runExperiment, type ArmSpec, type ExperimentResult } from '../lib/pipeline/experiment';
import { lineChartSvg } from '../lib/pipeline/plot';
import { defaultConfig } from '../lib/train/config';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const seeds = Number(opt('--seeds', '3'));
const outDir = opt('--out', path.join(__dirname, 'results'));
const work = opt('--work', path.join(os.tmpdir(), `valr-sft-bench-${process.pid}`));

const sizes = QUICK ? { train: 240, val: 20, test: 60 } : { train: 1200, val: 100, test: 300 };
const base = defaultConfig();
const config = QUICK
  ? { ...base, stage1: { ...base.stage1, epochs: 12, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 4, lr: 6e-4, projectorLr: 3e-3 } }
  : { ...base, stage1: { ...base.stage1, epochs: 10, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 4, lr: 6e-4, projectorLr: 3e-3 } };
const layers = 4; // tiny preset
const caps = [1, 2, 3, 4];
const arms: ArmSpec[] = [
  { name: 'vanilla-sft', latents: false, teachers: [], evalStepCaps: caps },
  { name: 'valr-no-align', latents: true, teachers: [], config: { lambda: 0 } },
  { name: 'valr-s-geometry', latents: true, teachers: [{ kind: 'geometry' }] },
  { name: 'valr-s-appearance', latents: true, teachers: [{ kind: 'appearance' }] },
  { name: 'valr-m', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], evalStepCaps: caps },
  { name: 'valr-own-tower', latents: true, teachers: [{ kind: 'own' }] },
  { name: 'valr-m-tap-middle', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], config: { tapLayer: layers / 2 } },
  { name: 'valr-m-tap-last', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], config: { tapLayer: layers - 1 } },
];
const efficiencyFractions = QUICK ? [0.5] : [0.25, 0.5];

function meanStd(xs: number[]) {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std: sd, n: xs.length };
}

async function main() {
  const started = Date.now();
  const runs: { seed: number; result: ExperimentResult }[] = [];
  const efficiency: { seed: number; fraction: number; result: ExperimentResult }[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const dataDir = path.join(work, `data-${seed}`);
    await makeDataset({ dir: dataDir, seed: 1234 + seed, ...sizes });
    const result = await runExperiment({ dataDir, outDir: path.join(work, `run-${seed}`), config: { ...config, seed }, arms });
    runs.push({ seed, result });
    for (const fraction of efficiencyFractions) {
      const r = await runExperiment({
        dataDir, outDir: path.join(work, `eff-${seed}-${fraction}`), config: { ...config, seed }, trainSamples: Math.round(sizes.train * fraction),
        arms: arms.filter((a) => a.name === 'vanilla-sft' || a.name === 'valr-m').map((a) => ({ ...a, evalStepCaps: undefined })),
      });
      efficiency.push({ seed, fraction, result: r });
    }
  }
  // Aggregate: mean and spread over seeds.
  const armNames = runs[0].result.arms.map((a) => a.name);
  const agg = armNames.map((name) => {
    const per = runs.map((r) => r.result.arms.find((a) => a.name === name)!);
    const views = [...new Set(per.flatMap((a) => Object.keys(a.eval.byViews)))].sort();
    const families = [...new Set(per.flatMap((a) => Object.keys(a.eval.byFamily)))].sort();
    return {
      name,
      overall: meanStd(per.map((a) => a.eval.accuracy)),
      byFamily: Object.fromEntries(families.map((f) => [f, meanStd(per.map((a) => a.eval.byFamily[f]?.accuracy ?? 0))])),
      byViews: Object.fromEntries(views.map((v) => [v, meanStd(per.map((a) => a.eval.byViews[v]?.accuracy ?? 0))])),
      capped: per[0].capped ? Object.fromEntries(Object.keys(per[0].capped).map((c) => [c, meanStd(per.map((a) => a.capped![c].accuracy))])) : undefined,
      latentSegmentsPerAnswer: meanStd(per.map((a) => a.eval.latentSegmentsPerSample)),
      stage2Seconds: meanStd(per.map((a) => a.trainSeconds)),
    };
  });
  const eff = ['vanilla-sft', 'valr-m'].map((name) => ({
    name,
    points: [...efficiencyFractions, 1].map((fraction) => {
      const accs = fraction === 1
        ? runs.map((r) => r.result.arms.find((a) => a.name === name)!.eval.accuracy)
        : efficiency.filter((e) => e.fraction === fraction).map((e) => e.result.arms.find((a) => a.name === name)!.eval.accuracy);
      return { samples: Math.round(sizes.train * fraction), ...meanStd(accs) };
    }),
  }));
  const commit = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  const command = `npx tsx bench/sft.bench.ts ${args.join(' ')}`.trim();
  const pct = (m: { mean: number; std: number }) => `${(m.mean * 100).toFixed(1)} ± ${(m.std * 100).toFixed(1)}`;
  const families = Object.keys(agg[0].byFamily);
  const views = Object.keys(agg[0].byViews);
  const table = [
    ['arm', 'overall', ...families, ...views.map((v) => `${v} views`), 'latent segs/answer'],
    ...agg.map((a) => [a.name, pct(a.overall), ...families.map((f) => pct(a.byFamily[f])), ...views.map((v) => pct(a.byViews[v])), a.latentSegmentsPerAnswer.mean.toFixed(2)]),
  ];
  const md = [
    `# VaLR vs vanilla SFT (${seeds} seed${seeds > 1 ? 's' : ''}${QUICK ? ', --quick' : ''})`,
    '',
    `Command: \`${command}\`; commit ${commit}; ${new Date().toISOString()}; ${os.cpus()[0]?.model}; ${((Date.now() - started) / 60000).toFixed(1)} min.`,
    `Data: ${sizes.train} train / ${sizes.test} test samples per seed (held-out scenes), 2-5 views. Accuracy in %, mean ± standard deviation over seeds.`,
    '',
    ...[table[0], table[0].map(() => '---'), ...table.slice(1)].map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Test-time scaling: accuracy with at most N reasoning steps',
    '',
    `| arm | ${caps.map((c) => `N=${c}`).join(' | ')} | unlimited |`,
    `| --- | ${caps.map(() => '---').join(' | ')} | --- |`,
    ...agg.filter((a) => a.capped).map((a) => `| ${a.name} | ${caps.map((c) => pct(a.capped![c])).join(' | ')} | ${pct(a.overall)} |`),
    '',
    '## Data efficiency: accuracy against training-set size',
    '',
    `| arm | ${eff[0].points.map((p) => `${p.samples} samples`).join(' | ')} |`,
    `| --- | ${eff[0].points.map(() => '---').join(' | ')} |`,
    ...eff.map((e) => `| ${e.name} | ${e.points.map((p) => pct(p)).join(' | ')} |`),
  ].join('\n');
  fs.mkdirSync(outDir, { recursive: true });
  const tag = `sft-${QUICK ? 'quick' : 'full'}`;
  fs.writeFileSync(path.join(outDir, `${tag}.json`), JSON.stringify({ command, commit, date: new Date().toISOString(), seeds, sizes, config, arms: agg, efficiency: eff, raw: runs.map((r) => ({ seed: r.seed, arms: r.result.arms.map((a) => ({ name: a.name, accuracy: a.eval.accuracy, byFamily: a.eval.byFamily, byViews: a.eval.byViews, capped: a.capped ? Object.fromEntries(Object.entries(a.capped).map(([k, v]) => [k, v.accuracy])) : undefined })) })) }, null, 2));
  fs.writeFileSync(path.join(outDir, `${tag}.md`), md + '\n');
  const plot = (series: { name: string; points: { x: number; y: number }[] }[], title: string, xLabel: string, file: string) =>
    fs.writeFileSync(path.join(outDir, file), lineChartSvg(series, { title, xLabel, yLabel: 'test accuracy' }));
  plot(agg.filter((a) => ['vanilla-sft', 'valr-no-align', 'valr-m'].includes(a.name)).map((a) => ({ name: a.name, points: Object.entries(a.byViews).map(([v, m]) => ({ x: Number(v), y: m.mean })) })),
    'Accuracy against reasoning length (views)', 'views = reasoning steps', `${tag}-views.svg`);
  plot(agg.filter((a) => a.capped).map((a) => ({ name: a.name, points: caps.map((c) => ({ x: c, y: a.capped![c].mean })) })),
    'Test-time scaling: at most N reasoning steps', 'N', `${tag}-step-cap.svg`);
  plot(eff.map((e) => ({ name: e.name, points: e.points.map((p) => ({ x: p.samples, y: p.mean })) })), 'Data efficiency', 'training samples', `${tag}-data-efficiency.svg`);
  console.log(md);
  console.log(`\nwrote ${path.join(outDir, `${tag}.json`)}, ${tag}.md and 3 SVG plots`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
