// `valr demo`: the whole method end to end on CPU. Makes a multi-view dataset,
// trains stage 1 once, then vanilla SFT and VaLR (latents + REPA to the geometry and
// appearance teachers) from it with the same stage-2 budget, evaluates both on the
// held-out test split and writes results.json, results.md and an SVG plot of
// accuracy against reasoning length (views = steps per question).
import * as fs from 'fs';
import * as path from 'path';
import { makeDataset } from '../data/dataset';
import { defaultConfig, type TrainConfig } from '../train/config';
import { runExperiment, type ExperimentResult } from './experiment';
import { lineChartSvg } from './plot';

export interface DemoOptions {
  outDir: string;
  quick: boolean;
  seed?: number;
  log?: (line: string) => void;
  shouldStop?: () => boolean;
}

/** Sizes that fit the time budget on a 2-core machine: --quick under 3 minutes, full under 20. */
export function demoPlan(quick: boolean, seed = 0): { data: { train: number; val: number; test: number }; config: TrainConfig } {
  const base = defaultConfig({ seed });
  return quick
    ? {
        data: { train: 240, val: 20, test: 60 },
        config: { ...base, stage1: { ...base.stage1, epochs: 12, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 4, lr: 6e-4, projectorLr: 3e-3 } },
      }
    : {
        data: { train: 1200, val: 100, test: 300 },
        config: { ...base, stage1: { ...base.stage1, epochs: 10, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 4, lr: 6e-4, projectorLr: 3e-3 } },
      };
}

export function resultsTable(r: ExperimentResult): string {
  const families = [...new Set(r.arms.flatMap((a) => Object.keys(a.eval.byFamily)))];
  const views = [...new Set(r.arms.flatMap((a) => Object.keys(a.eval.byViews)))].sort((a, b) => Number(a) - Number(b));
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const head = ['arm', 'overall', ...families, ...views.map((v) => `${v} views`), 'latent segs/answer', 'stage-2 s'];
  const rows = r.arms.map((a) => [
    a.name, pct(a.eval.accuracy), ...families.map((f) => (a.eval.byFamily[f] ? pct(a.eval.byFamily[f].accuracy) : '-')),
    ...views.map((v) => (a.eval.byViews[v] ? pct(a.eval.byViews[v].accuracy) : '-')),
    a.eval.latentSegmentsPerSample.toFixed(2), a.trainSeconds.toFixed(0),
  ]);
  return [head, head.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

export async function runDemo(o: DemoOptions): Promise<ExperimentResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const plan = demoPlan(o.quick, o.seed);
  const started = Date.now();
  const dataDir = path.join(o.outDir, 'data');
  await fs.promises.mkdir(o.outDir, { recursive: true });
  log(`valr demo${o.quick ? ' --quick' : ''}: making data in ${dataDir} (${plan.data.train} train / ${plan.data.test} test samples, 2-5 views)`);
  await makeDataset({ dir: dataDir, seed: 1234 + (o.seed ?? 0), ...plan.data });
  const result = await runExperiment({
    dataDir,
    outDir: o.outDir,
    config: plan.config,
    arms: [
      { name: 'vanilla-sft', latents: false, teachers: [] },
      { name: 'valr-m', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], evalPolicies: ['auto', 'force'] },
    ],
    log,
    shouldStop: o.shouldStop,
  });
  const seconds = (Date.now() - started) / 1000;
  const json = { ...result, seconds, command: `valr demo${o.quick ? ' --quick' : ''}` };
  await fs.promises.writeFile(path.join(o.outDir, 'results.json'), JSON.stringify(json, (k, v) => (k === 'predictions' ? undefined : v), 2));
  const table = resultsTable(result);
  const svg = lineChartSvg(
    result.arms.map((a) => ({
      name: a.name,
      points: Object.entries(a.eval.byViews).map(([v, t]) => ({ x: Number(v), y: t.accuracy, n: t.total })),
    })),
    { title: 'Accuracy against reasoning length', xLabel: 'views = reasoning steps per question', yLabel: 'test accuracy' },
  );
  await fs.promises.writeFile(path.join(o.outDir, 'accuracy_vs_reasoning_length.svg'), svg);
  await fs.promises.writeFile(path.join(o.outDir, 'results.md'), `# valr demo\n\n${table}\n\n${seconds.toFixed(0)} s in all.\n`);
  log(`\n${table}\n\nwrote ${path.join(o.outDir, 'results.json')}, results.md and accuracy_vs_reasoning_length.svg (${seconds.toFixed(0)} s)`);
  return result;
}
