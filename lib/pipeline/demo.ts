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
import { experimentReport } from './report';

export interface DemoOptions {
  outDir: string;
  quick: boolean;
  seed?: number;
  log?: (line: string) => void;
  shouldStop?: () => boolean;
}

/**
 * Sizes that fit the time budget on a 2-core machine: --quick under 5 minutes, full under 20.
 * Both train on thousands of freshly rendered samples (rendering costs ~1 ms per view), after
 * a perception stage that stands in for a pretrained vision encoder: with a few hundred
 * samples and a tower trained from scratch the model never looks at its images.
 */
export function demoPlan(quick: boolean, seed = 0): { data: { train: number; val: number; test: number }; config: TrainConfig } {
  const base = defaultConfig({ seed });
  return quick
    ? {
        data: { train: 2000, val: 20, test: 150 },
        config: {
          ...base, perception: { ...base.perception, steps: 1200 },
          stage1: { ...base.stage1, epochs: 3, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 1, lr: 6e-4, projectorLr: 3e-3 },
        },
      }
    : {
        data: { train: 8000, val: 100, test: 300 },
        config: {
          ...base, perception: { ...base.perception, steps: 3000 },
          stage1: { ...base.stage1, epochs: 3, lr: 3e-3 }, stage2: { ...base.stage2, epochs: 1, lr: 6e-4, projectorLr: 3e-3 },
        },
      };
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
      // 'force' is evaluated in the full demo only: a stage-2 model opens every segment itself, so it rarely differs from 'auto'
      { name: 'valr-m', latents: true, teachers: [{ kind: 'geometry' }, { kind: 'appearance' }], evalPolicies: o.quick ? ['auto'] : ['auto', 'force'] },
    ],
    log,
    shouldStop: o.shouldStop,
  });
  const seconds = (Date.now() - started) / 1000;
  const json = { ...result, seconds, command: `valr demo${o.quick ? ' --quick' : ''}` };
  await fs.promises.writeFile(path.join(o.outDir, 'results.json'), JSON.stringify(json, (k, v) => (k === 'predictions' ? undefined : v), 2));
  const report = experimentReport(result);
  const svg = lineChartSvg(
    result.arms.map((a) => ({
      name: a.name,
      points: Object.entries(a.eval.byViews).map(([v, t]) => ({ x: Number(v), y: t.accuracy, n: t.total })),
    })),
    { title: 'Accuracy against reasoning length', xLabel: 'views = reasoning steps per question', yLabel: 'test accuracy' },
  );
  await fs.promises.writeFile(path.join(o.outDir, 'accuracy_vs_reasoning_length.svg'), svg);
  await fs.promises.writeFile(path.join(o.outDir, 'results.md'), `# valr demo${o.quick ? ' --quick' : ''}\n\n${report}\n\n${seconds.toFixed(0)} s in all.\n`);
  log(`\n${report}\n\nwrote ${path.join(o.outDir, 'results.json')}, results.md and accuracy_vs_reasoning_length.svg (${seconds.toFixed(0)} s)`);
  return result;
}
