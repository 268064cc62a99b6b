#!/usr/bin/env node
// The `valr` command line.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { doctorReport } from './runtime';

type Flags = Record<string, string | boolean | undefined>;

const HELP: Record<string, string> = {
  main: `Usage: valr <command> [options]

Commands:
  demo       Make data, train vanilla SFT and VaLR on the tiny preset, evaluate both, write results
  data       Make the synthetic multi-view reasoning dataset (valr data make)
  train      Train one arm (stage 1 CoT SFT, then stage 2 VaLR or SFT) on a dataset
  eval       Evaluate a trained model on a split, with or without latent reasoning
  generate   Generate a chain of thought (with latent segments) for one sample
  bench      Run a benchmark (kernels, ops, latent)
  doctor     Show which native binary loaded and why, CUDA devices, versions and threads

Run 'valr <command> --help' for a command's options.`,
  demo: `Usage: valr demo [--out DIR] [--quick] [--seed N]

The whole method end to end on CPU: makes a dataset of multi-view 3D scenes, trains
stage 1 (CoT SFT), then vanilla SFT and VaLR (latents + REPA to the geometry and
appearance teachers) from it with the same stage-2 budget, evaluates both on the
held-out test split and writes results.json, results.md and
accuracy_vs_reasoning_length.svg into DIR (default ./valr-demo).
  --quick   a small version (minutes on 2 cores)
Ctrl-C saves a checkpoint and stops; rerunning resumes from it.`,
  data: `Usage: valr data make [--out DIR] [--seed N] [--train N] [--val N] [--test N] [--views 2,3,4,5] [--image-size 32]

Renders scenes (objects of several shapes, colours and sizes on a floor) from several
camera poses, asks counting / distance / direction / order / size questions with a
templated chain of thought (one step per view), and writes train/val/test JSONL
(held-out scenes), views.safetensors (RGB, depth, object ids, 3D points) and meta.json.`,
  train: `Usage: valr train --data DIR [--out DIR] [--arm valr|sft|valr-nolign] [--teachers geometry,appearance,own]
                  [--K 4] [--lambda 0.5] [--tap-layer N] [--epochs1 N] [--epochs2 N] [--batch N] [--grad-accum N]
                  [--lr1 X] [--lr2 X] [--projector-lr X] [--perception-steps N] [--seed N] [--resume]

Stage 0 (perception: per-patch object kind and size for the vision tower, which stays
frozen afterwards; --perception-steps 0 skips it), stage 1 (CoT SFT, CE), then stage 2: 'valr' = latents + CE + lambda * REPA, 'valr-nolign' =
latents without alignment, 'sft' = plain CoT SFT again. Writes checkpoints (atomic,
resumable with --resume), metrics.jsonl and the final model (model-<arm>/).`,
  eval: `Usage: valr eval --model DIR --data DIR [--split test] [--latents auto|off|force] [--max-steps N] [--limit N]

Accuracy overall, per question family and per number of views (reasoning length), with the
image-use gate: the same questions with every sample's images swapped for another sample's
(same number of views), teacher-forced CE with real and swapped images, and the blind
baseline (each family's most common training answer). --max-steps N reports accuracy only.`,
  generate: `Usage: valr generate --model DIR --data DIR [--split test] [--index N] [--latents auto|off|force]
                     [--temperature T] [--top-k N] [--top-p P] [--seed N] [--max-new-tokens N]

Prints the question, the generated chain of thought (latent segments shown as
<latent>[K steps]</latent>) and the answer next to the expected one.`,
  bench: `Usage: valr bench kernels|ops|latent [--quick] [...]

Runs bench/<name>.bench.ts from a clone of the repository (needs its dev dependencies).`,
  doctor: `Usage: valr doctor [--json]

Prints what loaded and why (CPU or CUDA binary), the probe of the CUDA binary
(driver and runtime versions, devices, compute capability, compiled architectures)
and the CPU thread count. Environment: VALR_DEVICE=cpu|cuda|auto, VALR_NUM_THREADS,
CUDA_VISIBLE_DEVICES.`,
};

function flags(args: string[], spec: Record<string, 'string' | 'boolean'>): Flags {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [k, t] of Object.entries(spec)) options[k] = { type: t };
  return parseArgs({ args, options, allowPositionals: true, strict: true }).values as Flags;
}

function num(f: Flags, key: string, dflt: number): number {
  const v = f[key];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got '${v}'`);
  return n;
}

// Ctrl-C: the running stage saves a checkpoint at the next step and stops.
function interruptible(): () => boolean {
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
    process.stderr.write('\nvalr: interrupted: saving a checkpoint and stopping (Ctrl-C again to abort)\n');
    process.once('SIGINT', () => process.exit(130));
  });
  return () => stop;
}

function printDoctor(json: boolean): void {
  const r = doctorReport() as Record<string, any>;
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  const lines = [
    `valr-node ${r.package}  (Node ${r.node}, N-API ${r.napi}, ${r.platform})`,
    `loaded:     ${r.loaded.variant} binary  ${r.loaded.path}`,
    `reason:     ${r.loaded.reason}`,
    `mode:       VALR_DEVICE=${r.env.VALR_DEVICE ?? '(unset: auto)'}`,
    `binaries:   cpu=${r.binaries.cpu ?? 'none'}`,
    `            cuda=${r.binaries.cuda ?? 'none'}`,
    `cuda:       ${r.cuda.status}: ${r.cuda.message}`,
    `            runtime ${r.cuda.runtime ?? '-'}, driver ${r.cuda.driver ?? '-'}, kernels for ${r.cuda.architectures ?? '-'}`,
    ...r.cuda.devices.map(
      (d: any) => `  device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiProcessors} SMs`,
    ),
    `cpu:        ${r.cpu}`,
    `threads:    ${r.threads}${r.env.VALR_NUM_THREADS ? ` (VALR_NUM_THREADS=${r.env.VALR_NUM_THREADS})` : ''}`,
  ];
  console.log(lines.join('\n'));
}

async function loadTrained(dir: string) {
  const { readSafetensorsSync, toFloat32 } = await import('./io/safetensors');
  const { MultimodalModel } = await import('./nn/mllm');
  const { WordTokenizer } = await import('./data/tokenizer');
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'valr.json'), 'utf8'));
  const model = new MultimodalModel(meta.model);
  const st = readSafetensorsSync(path.join(dir, 'model.safetensors'));
  model.loadStateDict(new Map([...st.tensors].map(([n, rec]) => [n, toFloat32(rec, n)])));
  const tok = WordTokenizer.fromJSON(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')));
  return { model, tok, meta };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP.main);
    return 0;
  }
  if (!(cmd in HELP) || cmd === 'main') {
    console.error(`valr: unknown command '${cmd}'\n\n${HELP.main}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP[cmd]);
    return 0;
  }
  switch (cmd) {
    case 'doctor': {
      const f = flags(rest, { json: 'boolean' });
      printDoctor(!!f.json);
      return 0;
    }
    case 'demo': {
      const f = flags(rest, { out: 'string', quick: 'boolean', seed: 'string' });
      const { runDemo } = await import('./pipeline/demo');
      const r = await runDemo({ outDir: String(f.out ?? './valr-demo'), quick: !!f.quick, seed: num(f, 'seed', 0), shouldStop: interruptible() });
      return r.stopped ? 130 : 0;
    }
    case 'data': {
      const sub = rest[0];
      if (sub !== 'make') {
        console.error(`valr data: expected 'make'\n\n${HELP.data}`);
        return 2;
      }
      const f = flags(rest.slice(1), { out: 'string', seed: 'string', train: 'string', val: 'string', test: 'string', views: 'string', 'image-size': 'string' });
      const { makeDataset } = await import('./data/dataset');
      const dir = String(f.out ?? './valr-data');
      const meta = await makeDataset({
        dir, seed: num(f, 'seed', 1234), train: num(f, 'train', 600), val: num(f, 'val', 100), test: num(f, 'test', 200),
        numViews: f.views ? String(f.views).split(',').map(Number) : undefined, imageSize: num(f, 'image-size', 32),
      });
      console.log(`wrote ${dir}: ${meta.sizes.train} train / ${meta.sizes.val} val / ${meta.sizes.test} test samples at ${meta.imageSize}x${meta.imageSize}`);
      return 0;
    }
    case 'train': {
      const f = flags(rest, {
        data: 'string', out: 'string', arm: 'string', teachers: 'string', K: 'string', lambda: 'string', 'tap-layer': 'string',
        epochs1: 'string', epochs2: 'string', batch: 'string', 'grad-accum': 'string', lr1: 'string', lr2: 'string',
        'projector-lr': 'string', seed: 'string', resume: 'boolean', preset: 'string', 'perception-steps': 'string',
      });
      if (!f.data) throw new Error('--data DIR is required (make one with: valr data make)');
      const { defaultConfig } = await import('./train/config');
      const { runExperiment } = await import('./pipeline/experiment');
      const base = defaultConfig({ seed: num(f, 'seed', 0) });
      const stage = (s: typeof base.stage1, e: string, lr: string) => ({
        ...s, epochs: num(f, e, s.epochs), batchSize: num(f, 'batch', s.batchSize), gradAccumulation: num(f, 'grad-accum', s.gradAccumulation), lr: num(f, lr, s.lr),
      });
      const config = {
        ...base, preset: (f.preset as 'tiny') ?? base.preset, K: num(f, 'K', base.K), lambda: num(f, 'lambda', base.lambda),
        tapLayer: f['tap-layer'] !== undefined ? num(f, 'tap-layer', 0) : undefined,
        perception: { ...base.perception, steps: num(f, 'perception-steps', base.perception.steps) },
        stage1: stage(base.stage1, 'epochs1', 'lr1'),
        stage2: { ...stage(base.stage2, 'epochs2', 'lr2'), projectorLr: num(f, 'projector-lr', base.stage2.projectorLr) },
      };
      const arm = String(f.arm ?? 'valr');
      const teacherKinds = String(f.teachers ?? 'geometry,appearance').split(',').filter(Boolean);
      const latents = arm !== 'sft';
      const teachers = arm === 'valr' ? teacherKinds.map((kind) => ({ kind }) as never) : [];
      const r = await runExperiment({
        dataDir: String(f.data), outDir: String(f.out ?? './valr-run'), config, resume: !!f.resume, shouldStop: interruptible(),
        arms: [{ name: arm, latents, teachers, config: arm === 'valr-nolign' ? { lambda: 0 } : {} }],
      });
      if (r.stopped) return 130;
      for (const a of r.arms) console.log(`${a.name}: test accuracy ${(a.eval.accuracy * 100).toFixed(1)}%`);
      return 0;
    }
    case 'eval': {
      const f = flags(rest, { model: 'string', data: 'string', split: 'string', latents: 'string', 'max-steps': 'string', limit: 'string' });
      if (!f.model || !f.data) throw new Error('--model DIR and --data DIR are required');
      const { prepareData, evalItems, evaluateModel, evaluateWithGate, unknownWords } = await import('./pipeline/experiment');
      const { blindBaseline, swapDonors } = await import('./train/image-gate');
      const { normalizeAnswer } = await import('./data/sequence');
      const { defaultConfig } = await import('./train/config');
      const { model, tok, meta } = await loadTrained(String(f.model));
      const p = prepareData(String(f.data), tok); // the model's vocabulary, not one rebuilt from --data
      const split = String(f.split ?? 'test');
      if (!['train', 'val', 'test'].includes(split)) throw new Error(`--split must be train, val or test, got '${split}'`);
      const samples = p.ds.splits[split as 'test'].slice(0, num(f, 'limit', Infinity));
      const unknown = unknownWords(p, samples);
      if (unknown.length) console.error(`warning: ${unknown.length} word(s) of ${String(f.data)} are not in the model's vocabulary and read as <unk>: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', ...' : ''}`);
      // models saved before view markers existed were trained without them
      const config = { ...defaultConfig(), viewMarkers: false, ...meta.train };
      const latents = String(f.latents ?? (config.latents ? 'auto' : 'off')) as 'auto' | 'off' | 'force';
      const useLatents = latents !== 'off' && !!meta.train?.latents;
      const out: Record<string, unknown> = {};
      if (f['max-steps'] !== undefined) {
        const ev = await evaluateModel(p, model, evalItems(p, model, samples, config.viewMarkers), latents, useLatents ? config.K : 0, num(f, 'max-steps', 0));
        Object.assign(out, { maxSteps: num(f, 'max-steps', 0), accuracy: ev.accuracy });
      } else {
        // the image-use gate: the same questions with each sample's images swapped for another's
        const blind = blindBaseline(p.ds.splits.train, samples, (a) => normalizeAnswer(a, p.tok));
        const r = await evaluateWithGate(p, model, { test: samples, donors: swapDonors(samples, config.seed), blind, config }, latents, useLatents);
        console.error(r.gate.verdict);
        Object.assign(out, {
          accuracy: r.eval.accuracy, correct: r.eval.correct, total: r.eval.total, byFamily: r.eval.byFamily, byViews: r.eval.byViews,
          latentSegmentsPerSample: r.eval.latentSegmentsPerSample, truncated: r.eval.truncated,
          swappedImages: { accuracy: r.swapped.accuracy, byFamily: r.swapped.byFamily },
          gate: { passed: r.gate.passed, drop: r.gate.drop, ceReal: r.gate.ceReal, ceSwapped: r.gate.ceSwapped },
          blindBaseline: { accuracy: blind.accuracy, byFamily: blind.byFamily, answers: blind.answers },
        });
      }
      console.log(JSON.stringify(out, null, 2));
      return 0;
    }
    case 'generate': {
      const f = flags(rest, {
        model: 'string', data: 'string', split: 'string', index: 'string', latents: 'string', temperature: 'string',
        'top-k': 'string', 'top-p': 'string', seed: 'string', 'max-new-tokens': 'string',
      });
      if (!f.model || !f.data) throw new Error('--model DIR and --data DIR are required');
      const { prepareData, evalItems } = await import('./pipeline/experiment');
      const { generateStream } = await import('./latent/generate');
      const { generationBudget } = await import('./train/evaluate');
      const { parseAnswer } = await import('./data/sequence');
      const { noGrad } = await import('./autograd/function');
      const { model, tok, meta } = await loadTrained(String(f.model));
      const p = prepareData(String(f.data), tok);
      const sample = p.ds.splits[String(f.split ?? 'test') as 'test'][num(f, 'index', 0)];
      if (!sample) throw new Error('no such sample (check --split and --index)');
      const [item] = evalItems(p, model, [sample], meta.train?.viewMarkers ?? false);
      const images = new Float32Array(item.images.flatMap((id) => [...p.image(id)]));
      console.log(`question: ${sample.question}\nviews: ${sample.images.length}`);
      const generated: number[] = [];
      let out = '';
      const latents = String(f.latents ?? (meta.train?.latents ? 'auto' : 'off')) as 'auto';
      for await (const e of generateStream(model.language_model, [item.prompt], {
        maxNewTokens: num(f, 'max-new-tokens', generationBudget(item.referenceTokens)), temperature: num(f, 'temperature', 0), topK: num(f, 'top-k', 0), topP: num(f, 'top-p', 1),
        seed: num(f, 'seed', 0), stopTokens: [p.ids.eos],
        latent: { K: meta.train?.K ?? 4, tokens: p.ids, policy: latents, stepToken: p.ids.step },
        embedPrompt: (ids, shape) => noGrad(() => model.embed({ ids, shape, images, numImages: item.images.length }).value),
      })) {
        if (e.type === 'token') {
          generated.push(e.token);
          if (e.token === p.ids.latentEnd) continue;
          out += ` ${tok.decode([e.token])}`;
        } else if (e.type === 'latent') out += `[${meta.train?.K ?? 4} latent steps]`;
      }
      console.log(`generated:${out}\nanswer: ${parseAnswer(Int32Array.from(generated), p.tok)} (expected ${sample.answer})`);
      return 0;
    }
    case 'bench': {
      const which = rest[0] && !rest[0].startsWith('-') ? rest[0] : 'kernels';
      const script = path.join(__dirname, '..', 'bench', `${which}.bench.ts`);
      if (!fs.existsSync(script)) {
        console.error(`valr bench: no benchmark '${which}' here; the benchmarks ship with the repository (npm run bench:${which} in a clone)`);
        return 1;
      }
      const r = spawnSync('npx', ['tsx', script, ...rest.filter((a) => a !== which)], { stdio: 'inherit' });
      return r.status ?? 1;
    }
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    const err = e as Error & { code?: string };
    console.error(`valr: ${err.code ? `[${err.code}] ` : ''}${err.message}`);
    process.exitCode = 1;
  },
);
