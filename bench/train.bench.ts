// Training-cost benchmark of the VaLR stage-2 step (CPU):
//  - tokens per second of our step (latentForward through K-slot segments + REPA
//    projectors + CE + lambda * REPA, backward, clipGradNorm, AdamW: the body of
//    trainStage's loop) against the PyTorch reference (bench/torch_valr_reference.py
//    --bench) in the same run with the same thread count; target: at least as fast;
//  - the cost of VaLR over vanilla SFT: the same samples without latent segments
//    (CE only), as the ratio of step times;
//  - peak memory: process RSS (sampled inside the step, after the forward and after
//    the backward) and the native host allocator's peakInUse.
// Writes bench/results/train-cpu-<hostname>.json.
//
//   npm run bench:train [-- --quick] [-- --threads N] [-- --rounds N] [-- --no-torch]
// Steps are timed in rounds, ours and PyTorch's in turn (the Python script runs as a
// step server), so that on a shared machine both see the same background load.
//   npx tsx bench/train.bench.ts --write-fixture [DIR]
//       writes the inputs of test/torch-reference.test.ts (a tiny model's parameters,
//       one batch, the config) to a temporary file and runs the PyTorch oracle on it:
//       DIR/step.safetensors (default test/fixtures/torch_valr_step). By hand:
//         npx tsx bench/train.bench.ts --write-inputs /tmp/in.safetensors
//         python3 bench/torch_valr_reference.py --oracle /tmp/in.safetensors test/fixtures/torch_valr_step/step.safetensors
// VALR_PYTHON picks the interpreter (default python3).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as F from '../lib/autograd/model-ops';
import { backward, type Variable } from '../lib/autograd/function';
import { repaCosineLoss } from '../lib/autograd/alignment-ops';
import { serializeSafetensors, type TensorToWrite } from '../lib/io/safetensors';
import { splitLatentSample } from '../lib/latent/layout';
import { RepaProjector } from '../lib/latent/repa-projector';
import { latentForward } from '../lib/latent/train-forward';
import { MultimodalModel } from '../lib/nn/mllm';
import { Initializer } from '../lib/nn/module';
import { presets } from '../lib/nn/presets';
import { AdamW, clipGradNorm } from '../lib/optim/adamw';
import * as runtime from '../lib/runtime';
import { scope, Tensor } from '../lib/tensor';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string, dflt: string) => (args.includes(name) && args[args.indexOf(name) + 1] && !args[args.indexOf(name) + 1].startsWith('--') ? args[args.indexOf(name) + 1] : dflt);
const PYTHON = process.env.VALR_PYTHON || 'python3';
const REFERENCE = path.join(__dirname, 'torch_valr_reference.py');

// ids: 0 pad, 1 bos, 2 eos, 3 <image>, 4 <latent>, 5 </latent>, 6 <slot>, 7 <step>, 8 <answer>, 9.. words
const TOKENS = { latentStart: 4, latentEnd: 5, slot: 6 };
const IMAGE = 3;

/** What both implementations read: the model, the batch layout rule, the step's hyper-parameters. */
export interface StepConfig {
  decoder: MultimodalModel['config']['decoder'];
  vision: MultimodalModel['config']['vision'];
  imageTokenId: number;
  tokens: typeof TOKENS;
  K: number;
  tapLayer: number;
  lambda: number;
  teachers: { grid: [number, number]; dim: number }[];
  projectorHidden: number;
  lr: number;
  projectorLr: number;
  weightDecay: number;
  maxGradNorm: number;
}

interface Sample {
  ids: number[];
  labels: number[];
  images: number;
}

// ---- the synthetic batch (same rule as default_batch in the Python script) -----------------
export function makeBatch(cfg: StepConfig, B: number, views: number, segments: number, latents: boolean): Sample[] {
  const tpi = Math.floor(cfg.vision.imageSize / cfg.vision.patchSize) ** 2, V = cfg.decoder.vocabSize;
  return Array.from({ length: B }, (_, b) => {
    const word = (i: number) => 16 + ((b * 31 + i * 7) % (V - 16));
    const ids = [1, ...Array(views * tpi).fill(IMAGE), ...Array.from({ length: 8 + (b % 4) }, (_, i) => word(i))];
    const prompt = ids.length;
    for (let s = 0; s < segments; s++) {
      if (latents) ids.push(TOKENS.latentStart, ...Array(cfg.K).fill(TOKENS.slot), TOKENS.latentEnd);
      ids.push(...Array.from({ length: 6 + ((b + s) % 5) }, (_, i) => word(100 + s * 10 + i)));
    }
    ids.push(word(999), 2);
    return { ids, labels: ids.map((x, p) => (p < prompt ? -100 : x)), images: views };
  });
}

// ---- our step: the body of trainStage's loop (lib/train/trainer.ts) -------------------------
export function buildModel(cfg: StepConfig, seed = 0) {
  const model = new MultimodalModel({ decoder: cfg.decoder, vision: cfg.vision, imageTokenId: cfg.imageTokenId }, { seed });
  const g = Math.round(Math.sqrt(cfg.K));
  const psi = cfg.teachers.map((t, i) => new RepaProjector(cfg.decoder.hiddenSize, cfg.projectorHidden, t.dim, [g, g], t.grid, { seed: seed + 7 + i }));
  return { model, psi };
}

let rssPeak = 0;
const sampleRss = () => {
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
};

export function stepRunner(cfg: StepConfig, model: MultimodalModel, psi: RepaProjector[], batch: Sample[], withLatents: boolean) {
  const rnd = new Initializer(123);
  const vis = cfg.vision;
  const numImages = batch.reduce((n, s) => n + s.images, 0);
  const images = rnd.normal(numImages * vis.channels * vis.imageSize * vis.imageSize, 1);
  const encoded = batch.map((s) => ({ ids: Int32Array.from(s.ids), labels: Int32Array.from(s.labels) }));
  const segCount = encoded.map((e) => splitLatentSample(e.ids, e.labels, cfg.K, cfg.tokens).segments);
  // teacher features per (sample, segment), fixed (the trainer asks its teachers every step)
  const feats = cfg.teachers.map((t) => segCount.map((n) => Array.from({ length: n }, () => rnd.normal(t.grid[0] * t.grid[1] * t.dim, 1))));
  model.vision_tower.freeze(true); // stage 2
  const lmParams = [...model.language_model.parameters(), ...model.projector.parameters()];
  const psiParams = withLatents ? psi.flatMap((p) => p.parameters()) : [];
  const groups = [{ params: lmParams, lr: cfg.lr, weightDecay: cfg.weightDecay }];
  if (psiParams.length) groups.push({ params: psiParams, lr: cfg.projectorLr, weightDecay: cfg.weightDecay });
  const optimizer = new AdamW(groups);
  const params = groups.flatMap((g) => g.params);
  const tokens = batch.reduce((n, s) => n + s.ids.length, 0);
  const step = (): number => {
    const loss = scope(() => {
      const layouts = encoded.map((e) => splitLatentSample(e.ids, e.labels, cfg.K, cfg.tokens));
      const out = latentForward(model.language_model, layouts, {
        K: cfg.K,
        tapLayer: cfg.tapLayer,
        embedStage: (s, ids, shape) => (s === 0 ? model.embed({ ids, shape, images, numImages }) : undefined),
      });
      let total: Variable = out.ce;
      if (withLatents && out.taps) {
        const S = out.segments.length;
        const targets = cfg.teachers.map((t, m) => {
          const P = t.grid[0] * t.grid[1], data = new Float32Array(S * P * t.dim);
          out.segments.forEach((sg, i) => data.set(feats[m][sg.sample][sg.segment], i * P * t.dim));
          return Tensor.fromArray(data, [S, P, t.dim]);
        });
        const repa = repaCosineLoss(psi.map((p) => p.forward(out.taps!)), targets);
        total = F.add(total, repa, 1, cfg.lambda);
      }
      sampleRss();
      backward(total);
      sampleRss();
      return (total.value.toArray() as Float32Array)[0];
    });
    clipGradNorm(params, cfg.maxGradNorm);
    optimizer.update();
    for (const p of params) p.zeroGrad();
    return loss;
  };
  return { step, tokens, dispose: () => optimizer.dispose() };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// ---- the oracle fixture ------------------------------------------------------------------------
export const FIXTURE_CONFIG: StepConfig = {
  decoder: {
    vocabSize: 32, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
    ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: true, attentionBias: true, maxPositions: 128,
  },
  vision: { imageSize: 8, patchSize: 4, channels: 3, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 16, layerNormEps: 1e-6 },
  imageTokenId: IMAGE,
  tokens: TOKENS,
  K: 4,
  tapLayer: 1,
  lambda: 0.5,
  // 2x2 slots upsampled to a 4x5 grid: weights that differ from align_corners=True (2 -> 3 would
  // not tell them apart) and unequal axes (a swapped height/width would show)
  teachers: [{ grid: [4, 5], dim: 6 }],
  projectorHidden: 8,
  lr: 1e-3,
  projectorLr: 5e-3,
  weightDecay: 0.01,
  maxGradNorm: 1,
};

export function fixtureInputs(cfg: StepConfig = FIXTURE_CONFIG): { tensors: Record<string, TensorToWrite>; metadata: Record<string, string> } {
  const { model, psi } = buildModel(cfg, 0);
  const named = [...model.namedParameters(), ...psi.flatMap((p, i) => p.namedParameters(`psi.${i}.`))];
  const rnd = new Initializer(2026);
  const tensors: Record<string, TensorToWrite> = {};
  // Larger than the default init, nonzero biases, norm weights off 1: every term matters.
  for (const [name, p] of named) {
    const n = p.value.size;
    const data = /norm/.test(name)
      ? rnd.normal(n, 0.1).map((v) => (name.endsWith('.weight') ? 1 + v : v))
      : name.endsWith('.bias') ? rnd.normal(n, 0.1) : rnd.normal(n, 0.2);
    tensors[`param.${name}`] = { shape: [...p.value.shape], data };
  }
  model.dispose();
  psi.forEach((p) => p.dispose());
  const L = TOKENS.latentStart, E = TOKENS.latentEnd, S4 = Array(cfg.K).fill(TOKENS.slot);
  const im = (n: number) => Array(n * Math.floor(cfg.vision.imageSize / cfg.vision.patchSize) ** 2).fill(IMAGE);
  // 2 + 1 + 1 segments, 2 + 1 + 1 views, different lengths in every piece (padding in every stage)
  const samples = [
    [1, ...im(2), 9, 10, L, ...S4, E, 7, 11, 12, L, ...S4, E, 7, 13, 8, 14, 2],
    [1, ...im(1), 15, L, ...S4, E, 7, 16, 17, 18, 19, 8, 20, 2],
    [1, ...im(1), 21, 22, 23, L, ...S4, E, 7, 24, 8, 25, 2],
  ].map((ids) => ({ ids, prompt: ids.indexOf(L) })); // no loss on the prompt (image tokens, question)
  const B = samples.length, T = Math.max(...samples.map((s) => s.ids.length));
  const ids = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  samples.forEach((s, b) => s.ids.forEach((x, t) => {
    ids[b * T + t] = x;
    labels[b * T + t] = t < s.prompt ? -100 : x;
  }));
  tensors['batch.ids'] = { shape: [B, T], data: ids };
  tensors['batch.labels'] = { shape: [B, T], data: labels };
  tensors['batch.lengths'] = { shape: [B], data: Int32Array.from(samples, (s) => s.ids.length) };
  const N = 4, v = cfg.vision;
  tensors['batch.images'] = { shape: [N, v.channels, v.imageSize, v.imageSize], data: rnd.normal(N * v.channels * v.imageSize ** 2, 1) };
  const segments = 4; // in (sample, segment) order
  cfg.teachers.forEach((t, m) => {
    const P = t.grid[0] * t.grid[1];
    tensors[`batch.teacher.${m}`] = { shape: [segments, P, t.dim], data: rnd.normal(segments * P * t.dim, 1) };
  });
  return { tensors, metadata: { format: 'valr-torch-step/1', config: JSON.stringify(cfg), written: 'npx tsx bench/train.bench.ts --write-fixture' } };
}

function writeFixture(): void {
  const inputsArg = args.includes('--write-inputs') ? opt('--write-inputs', '') : '';
  const { tensors, metadata } = fixtureInputs();
  const bytes = serializeSafetensors(tensors, metadata);
  if (inputsArg) {
    fs.writeFileSync(inputsArg, bytes);
    console.log(`wrote ${inputsArg}; now: ${PYTHON} bench/torch_valr_reference.py --oracle ${inputsArg} OUT.safetensors`);
    return;
  }
  const dir = opt('--write-fixture', path.join(__dirname, '..', 'test', 'fixtures', 'torch_valr_step'));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(os.tmpdir(), `valr-step-inputs-${process.pid}.safetensors`);
  fs.writeFileSync(tmp, bytes);
  const out = path.join(dir, 'step.safetensors');
  const r = spawnSync(PYTHON, [REFERENCE, '--oracle', tmp, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  fs.rmSync(tmp, { force: true });
  if (r.status !== 0) throw new Error(`the PyTorch oracle failed (exit ${r.status}): ${r.stdout}`);
  console.log(r.stdout.trim());
  console.log(`wrote ${path.relative(process.cwd(), out)} (${fs.statSync(out).size} bytes)`);
}

// ---- the benchmark -----------------------------------------------------------------------------
/** The PyTorch reference as a server of steps (--bench --serve), so its steps interleave with ours. */
class TorchReference {
  readonly info: { threads: number; torch: string; parameters: number; tokens_per_step: Record<string, number> };
  #proc: ChildProcess;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #stderr = '';
  #closed = false;

  private constructor(proc: ChildProcess, info: TorchReference['info']) {
    this.#proc = proc;
    this.info = info;
  }

  /** Starts the server; a string says why there is no PyTorch to compare with. */
  static async start(cfg: StepConfig, valr: Sample[], sft: Sample[], threads: number): Promise<TorchReference | string> {
    if (args.includes('--no-torch')) return '--no-torch';
    const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status !== 0) return `PyTorch is not importable with ${PYTHON} (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()})`;
    const config = JSON.stringify({ ...cfg, samples: valr, sftSamples: sft });
    const proc = spawn(PYTHON, [REFERENCE, '--bench', '--serve', '--config', config, '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const t = new TorchReference(proc, undefined as never);
    proc.stderr!.on('data', (b) => (t.#stderr += b));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (t.#waiting) {
        const w = t.#waiting;
        t.#waiting = null;
        w(line);
      } else t.#lines.push(line);
    });
    proc.on('close', () => {
      t.#closed = true;
      t.#waiting?.(null);
    });
    const ready = await t.#next();
    if (!ready) return `the PyTorch reference failed: ${t.#stderr.trim().split('\n').slice(-3).join(' | ')}`;
    (t as { info: TorchReference['info'] }).info = JSON.parse(ready);
    return t;
  }

  #next(): Promise<string | null> {
    if (this.#lines.length) return Promise.resolve(this.#lines.shift()!);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async steps(kind: 'valr' | 'sft', n: number): Promise<number[]> {
    this.#proc.stdin!.write(`${kind} ${n}\n`);
    const line = await this.#next();
    if (!line) throw new Error(`the PyTorch reference stopped: ${this.#stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return JSON.parse(line).times;
  }

  async quit(): Promise<{ peak_rss_mb: number }> {
    this.#proc.stdin!.write('quit\n');
    const line = await this.#next();
    return line ? JSON.parse(line) : { peak_rss_mb: NaN };
  }
}

const stats = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), n: xs.length });
/** Median over the steps timed in the same round of theirs[i] / ours[i]: robust to load that comes and goes. */
const pairedRatio = (theirs: number[], ours: number[]) => median(theirs.map((t, i) => t / ours[i]));

async function benchmark(): Promise<void> {
  if (args.includes('--threads')) runtime.setNumThreads(Number(opt('--threads', '0')));
  const threads = runtime.numThreads();
  const preset = presets.tiny;
  const K = 4;
  const cfg: StepConfig = {
    decoder: { ...preset.decoder, vocabSize: 256 },
    vision: preset.vision,
    imageTokenId: IMAGE,
    tokens: TOKENS,
    K,
    tapLayer: Math.max(1, Math.floor((preset.decoder.numLayers * 12) / 28)),
    lambda: 0.5,
    // two teachers on a 4x4 grid (P = 4K), as the experiment pipeline's geometry + appearance
    teachers: [{ grid: [4, 4], dim: 16 }, { grid: [4, 4], dim: 32 }],
    projectorHidden: 64,
    lr: 4e-4,
    projectorLr: 2e-3,
    weightDecay: 0.01,
    maxGradNorm: 1,
  };
  const B = 8, VIEWS = 3, SEGMENTS = 3;
  // Rounds of `per` steps, each kind in turn (ours, then PyTorch's): on a shared machine
  // both implementations see the same background load.
  const rounds = Number(opt('--rounds', QUICK ? '4' : '10')), per = QUICK ? 1 : 2, warmup = QUICK ? 1 : 2;
  // PyTorch's time budget: past it (and with at least 2 samples of each kind) its rounds stop.
  const torchBudget = QUICK ? 15 : 120;
  const load = os.loadavg()[0];
  const valrBatch = makeBatch(cfg, B, VIEWS, SEGMENTS, true);
  const sftBatch = makeBatch(cfg, B, VIEWS, SEGMENTS, false);
  console.log(
    `valr train (cpu) | preset tiny (hidden ${cfg.decoder.hiddenSize}, ${cfg.decoder.numLayers} layers, vocab ${cfg.decoder.vocabSize}; ViT ${cfg.vision.numLayers} layers) | ` +
      `B=${B}, ${VIEWS} views, ${SEGMENTS} segments of K=${K}, ${cfg.teachers.length} teachers | threads ${threads} | ` +
      `${warmup} warm-up + ${rounds} x ${per} timed steps of each kind, interleaved${QUICK ? ' | --quick' : ''} | load average ${load.toFixed(2)}`,
  );
  if (load >= 0.5 && threads > 1) {
    console.log(
      `note: load average ${load.toFixed(2)} on ${os.cpus().length} cores before starting: other processes share the CPU. PyTorch's OpenMP ` +
        `threads wait for each other at every op and degrade badly when a core is taken; compare with --threads 1 too.`,
    );
  }

  const { model, psi } = buildModel(cfg, 0);
  const valr = stepRunner(cfg, model, psi, valrBatch, true);
  const sft = stepRunner(cfg, model, psi, sftBatch, false);
  const torchOrWhy = await TorchReference.start(cfg, valrBatch, sftBatch, threads);
  const torch = typeof torchOrWhy === 'string' ? null : torchOrWhy;
  const ourParams = model.parameterCount() + psi.reduce((n, p) => n + p.parameterCount(), 0);
  if (torch && (torch.info.tokens_per_step.valr !== valr.tokens || torch.info.tokens_per_step.sft !== sft.tokens || torch.info.parameters !== ourParams)) {
    throw new Error(
      `the PyTorch reference is not the same problem: ${JSON.stringify(torch.info.tokens_per_step)} tokens/step and ${torch.info.parameters} parameters ` +
        `vs ours ${valr.tokens} / ${sft.tokens} and ${ourParams}`,
    );
  }
  const ourSteps = (run: () => number, n: number) => Array.from({ length: n }, () => {
    const t0 = process.hrtime.bigint();
    const loss = run();
    if (!Number.isFinite(loss)) throw new Error(`the step's loss is ${loss}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  });
  const times = { valr: [] as number[], sft: [] as number[], torchValr: [] as number[], torchSft: [] as number[] };
  ourSteps(valr.step, warmup);
  ourSteps(sft.step, warmup);
  if (torch) {
    await torch.steps('valr', warmup);
    await torch.steps('sft', warmup);
  }
  let torchSeconds = 0;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  for (let r = 0; r < rounds; r++) {
    const withTorch = torch && (torchSeconds < torchBudget || times.torchValr.length < 2);
    times.valr.push(...ourSteps(valr.step, per));
    if (withTorch) times.torchValr.push(...(await torch.steps('valr', per)));
    times.sft.push(...ourSteps(sft.step, per));
    if (withTorch) times.torchSft.push(...(await torch.steps('sft', per)));
    torchSeconds = sum(times.torchValr) + sum(times.torchSft);
  }
  if (torch && times.torchValr.length < rounds * per) {
    console.log(`note: PyTorch's steps took ${torchSeconds.toFixed(0)} s, over the ${torchBudget} s budget: ${times.torchValr.length} of ${rounds * per} timed`);
  }
  const rss = rssPeak, hostPeak = runtime.hostMemoryStats().peakInUse;
  const torchPeak = torch ? (await torch.quit()).peak_rss_mb : NaN;
  valr.dispose();
  sft.dispose();
  model.dispose();
  psi.forEach((p) => p.dispose());

  const ours = stats(times.valr), oursSft = stats(times.sft);
  const tps = valr.tokens / ours.median;
  const ms = (s: number) => `${(s * 1e3).toFixed(1)} ms`;
  console.log(`valr    stage-2 step (latents + REPA): ${ms(ours.median)} median (min ${ms(ours.min)}), ${tps.toFixed(0)} tokens/s (${valr.tokens} tokens/step)`);
  let theirs: ReturnType<typeof stats> | null = null, theirsSft: ReturnType<typeof stats> | null = null, paired: number | null = null;
  if (!torch) console.log(`pytorch stage-2 step: skipped: ${torchOrWhy}`);
  else {
    theirs = stats(times.torchValr);
    theirsSft = stats(times.torchSft);
    console.log(
      `pytorch stage-2 step (latents + REPA): ${ms(theirs.median)} median (min ${ms(theirs.min)}), ${(valr.tokens / theirs.median).toFixed(0)} tokens/s ` +
        `(torch ${torch.info.torch}, ${torch.info.threads} threads)`,
    );
    const speedup = theirs.median / ours.median;
    paired = pairedRatio(times.torchValr, times.valr);
    console.log(
      `valr vs pytorch: ${speedup.toFixed(2)}x the tokens/s (median of the per-round ratios ${paired.toFixed(2)}x, min/min ${(theirs.min / ours.min).toFixed(2)}x; ` +
        `target >= 1: ${speedup >= 1 ? 'PASS' : 'MISS'})`,
    );
  }
  const ratio = ours.median / oursSft.median;
  console.log(
    `VaLR over vanilla SFT (step time, same samples without latents): ${ratio.toFixed(2)}x (${ms(ours.median)} vs ${ms(oursSft.median)}, ` +
      `${sft.tokens} tokens/step without latents)` + (theirs && theirsSft ? `; pytorch: ${(theirs.median / theirsSft.median).toFixed(2)}x` : ''),
  );
  const mb = (x: number) => x / (1 << 20);
  console.log(
    `peak memory: rss ${mb(rss).toFixed(0)} MiB, native host allocator peakInUse ${mb(hostPeak).toFixed(1)} MiB` +
      (torch ? ` | pytorch process peak rss ${torchPeak.toFixed(0)} MiB` : ''),
  );

  const commit = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', cwd: path.join(__dirname, '..') }).stdout?.trim() || 'unknown';
  const dirty = (spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: path.join(__dirname, '..') }).stdout ?? '').trim() !== '';
  const out = path.join(__dirname, 'results', `train-cpu-${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: os.loadavg(),
    commit, dirty, threads, quick: QUICK,
    batch: { samples: B, views: VIEWS, segments: SEGMENTS, K, teachers: cfg.teachers, tokensPerStep: valr.tokens, sftTokensPerStep: sft.tokens },
    model: { decoder: cfg.decoder, vision: cfg.vision, projectorHidden: cfg.projectorHidden, tapLayer: cfg.tapLayer, parameters: ourParams },
    timing: { warmup, rounds, stepsPerRound: per, interleaved: true },
    valr: {
      stepMs: ours.median * 1e3, minStepMs: ours.min * 1e3, tokensPerSec: tps,
      sftStepMs: oursSft.median * 1e3, sftMinStepMs: oursSft.min * 1e3, sftTokensPerSec: sft.tokens / oursSft.median, valrOverSft: ratio,
    },
    pytorch: !torch || !theirs || !theirsSft ? { skipped: torchOrWhy } : {
      torch: torch.info.torch, threads: torch.info.threads, stepMs: theirs.median * 1e3, minStepMs: theirs.min * 1e3, tokensPerSec: valr.tokens / theirs.median,
      sftStepMs: theirsSft.median * 1e3, sftMinStepMs: theirsSft.min * 1e3, valrOverSft: theirs.median / theirsSft.median, peakRssMiB: torchPeak,
    },
    speedupVsPytorch: theirs ? theirs.median / ours.median : null,
    speedupVsPytorchPaired: paired,
    speedupVsPytorchMin: theirs ? theirs.min / ours.min : null,
    memory: { peakRssMiB: mb(rss), hostPeakInUseMiB: mb(hostPeak) },
    stepSeconds: times,
  }, null, 2));
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

if (require.main === module) {
  if (args.includes('--write-fixture') || args.includes('--write-inputs')) writeFixture();
  else {
    benchmark().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  }
}
