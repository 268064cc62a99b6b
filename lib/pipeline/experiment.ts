// An experiment: one dataset, one stage-1 model, then stage 2 for each arm from the
// same stage-1 weights and the same compute budget, and evaluation of every arm on
// the held-out test split (overall, per question family, per reasoning length).
// `valr demo`, `valr train` and the benchmark scripts are built from this.
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset, type LoadedDataset, type Sample } from '../data/dataset';
import { buildSequence, parseAnswer } from '../data/sequence';
import { specialIds, WordTokenizer } from '../data/tokenizer';
import { fail } from '../errors';
import { writeFileAtomic } from '../io/atomic-file';
import { writeSafetensorsAtomic } from '../io/safetensors';
import { RepaProjector } from '../latent/repa-projector';
import { MultimodalModel, type MLLMConfig } from '../nn/mllm';
import { presets } from '../nn/presets';
import { makeTeachers, type TeacherSpec } from '../teachers/registry';
import type { Teacher } from '../teachers/teacher';
import type { TrainConfig } from '../train/config';
import { evaluate, type EvalItem, type EvalResult } from '../train/evaluate';
import { Progress } from '../train/progress';
import { trainStage, type EncodedSample } from '../train/trainer';

export type ArmName = 'sft' | 'valr' | 'valr-nolign' | `valr-${string}`;

export interface ArmSpec {
  name: string;
  /** stage 2 with latents (false: vanilla SFT continues plain CoT) */
  latents: boolean;
  /** teachers for REPA (empty with latents: VaLR without alignment, lambda = 0) */
  teachers: TeacherSpec[];
  /** overrides of the training config (tap layer, lambda, ...) */
  config?: Partial<TrainConfig>;
  /**
   * latent policies to evaluate with (latent arms): 'auto' = the model opens segments
   * itself, 'force' = a segment before every reasoning step, as in training. Default ['auto'].
   */
  evalPolicies?: ('auto' | 'force')[];
  /** also evaluate with at most this many reasoning steps (test-time scaling curves) */
  evalStepCaps?: number[];
}

export interface ExperimentOptions {
  dataDir: string;
  outDir: string;
  config: TrainConfig;
  arms: ArmSpec[];
  /** cap on training samples (data-efficiency curves) */
  trainSamples?: number;
  /** cap on test samples */
  testSamples?: number;
  log?: (line: string) => void;
  shouldStop?: () => boolean;
  resume?: boolean;
}

export interface ArmResult {
  name: string;
  eval: EvalResult;
  /** accuracy with generation capped at N reasoning steps, by N */
  capped?: Record<string, EvalResult>;
  trainSeconds: number;
  finalLoss: number;
}

export interface ExperimentResult {
  config: TrainConfig;
  dataset: { dir: string; train: number; test: number };
  stage1: { seconds: number; finalLoss: number };
  arms: ArmResult[];
  stopped: boolean;
}

export interface PreparedData {
  ds: LoadedDataset;
  tok: WordTokenizer;
  ids: ReturnType<typeof specialIds>;
  image: (id: string) => Float32Array;
}

/** Loads the dataset and builds (or loads, from the data dir) its tokenizer. */
export function prepareData(dataDir: string): PreparedData {
  const ds = loadDataset(dataDir);
  const tokFile = path.join(dataDir, 'tokenizer.json');
  let tok: WordTokenizer;
  if (fs.existsSync(tokFile)) tok = WordTokenizer.fromJSON(JSON.parse(fs.readFileSync(tokFile, 'utf8')));
  else {
    const texts = ds.splits.train.flatMap((s) => [s.question, ...s.steps.map((st) => st.text), s.answer]);
    tok = WordTokenizer.build(texts);
  }
  return { ds, tok, ids: specialIds(tok), image: (id) => ds.view(id).rgb };
}

export function modelConfig(p: PreparedData, config: TrainConfig): MLLMConfig {
  const preset = presets[config.preset];
  return {
    decoder: { ...preset.decoder, vocabSize: p.tok.vocabSize },
    vision: { ...preset.vision, imageSize: p.ds.meta.imageSize },
    imageTokenId: p.ids.image,
  };
}

export function encodeSamples(p: PreparedData, model: MultimodalModel, samples: readonly Sample[], latentK: number): EncodedSample[] {
  return samples.map((s) => {
    const seq = buildSequence(s, p.tok, { tokensPerImage: model.tokensPerImage, latentK });
    return { ids: seq.ids, labels: seq.labels, images: s.images, segmentImages: seq.stepTargets.map((v: number) => s.images[v]) };
  });
}

export function evalItems(p: PreparedData, model: MultimodalModel, samples: readonly Sample[]): EvalItem[] {
  return samples.map((s) => {
    const seq = buildSequence(s, p.tok, { tokensPerImage: model.tokensPerImage, latentK: 0 });
    return { prompt: seq.ids.slice(0, seq.promptLength), images: s.images, answer: s.answer, family: s.family, numViews: s.numViews };
  });
}

export async function evaluateModel(
  p: PreparedData, model: MultimodalModel, items: EvalItem[], latents: 'auto' | 'force' | 'off', K: number, maxReasoningSteps?: number,
) {
  return evaluate(model, items, {
    latents,
    K,
    maxReasoningSteps,
    tokens: { latentStart: p.ids.latentStart, latentEnd: p.ids.latentEnd, slot: p.ids.slot, eos: p.ids.eos, answer: p.ids.answer, step: p.ids.step, image: p.ids.image },
    image: p.image,
    parseAnswer: (ids) => parseAnswer(ids, p.tok),
  });
}

function teacherGrid(config: TrainConfig): [number, number] {
  const g = Math.round(Math.sqrt(config.K)) * 2; // P = 4K patches: the upsampling is real
  return [g, g];
}

export function makeArmTeachers(p: PreparedData, model: MultimodalModel, specs: TeacherSpec[], config: TrainConfig): Teacher[] {
  return makeTeachers(specs, { view: (id: string) => p.ds.view(id), tower: model.vision_tower, images: p.image, grid: teacherGrid(config) });
}

/** Saves a model and what is needed to use it (config, tokenizer) in `dir`. */
export async function saveModel(dir: string, model: MultimodalModel, tok: WordTokenizer, config: TrainConfig, extra: Record<string, unknown> = {}) {
  await fs.promises.mkdir(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, v] of model.namedParameters()) tensors[name] = { shape: [...v.value.shape], data: v.value.toArray() as Float32Array };
  await writeSafetensorsAtomic(path.join(dir, 'model.safetensors'), tensors, { format: 'valr-mllm/1' });
  const write = (file: string, value: unknown) => writeFileAtomic(path.join(dir, file), JSON.stringify(value, null, 2));
  await write('tokenizer.json', tok.toJSON());
  await write('valr.json', { format: 'valr-mllm/1', model: model.config, train: config, ...extra });
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const p = prepareData(o.dataDir);
  const config = o.config;
  if (!Number.isInteger(Math.sqrt(config.K))) fail('ERR_VALR_ARGUMENT', `K must be a perfect square (the slots form a grid), got ${config.K}`);
  await fs.promises.mkdir(o.outDir, { recursive: true });
  const train = p.ds.splits.train.slice(0, o.trainSamples ?? Infinity);
  const test = p.ds.splits.test.slice(0, o.testSamples ?? Infinity);
  const model = new MultimodalModel(modelConfig(p, config), { seed: config.seed });
  const metrics = path.join(o.outDir, 'metrics.jsonl');
  log(`model: ${model.parameterCount().toLocaleString()} parameters; ${train.length} training and ${test.length} test samples`);

  // Stage 1: CoT SFT (shared by every arm).
  const t1 = Date.now();
  const progress1 = new Progress(metrics, '[stage 1] ');
  const s1 = await trainStage({
    model, stage: 1, config, data: encodeSamples(p, model, train, 0), image: p.image, tokens: p.ids,
    progress: progress1, checkpointDir: path.join(o.outDir, 'checkpoint-stage1'), resume: o.resume, shouldStop: o.shouldStop,
  });
  await progress1.close();
  const stage1 = { seconds: (Date.now() - t1) / 1000, finalLoss: s1.losses[s1.losses.length - 1] ?? NaN };
  if (s1.stopped) return { config, dataset: { dir: o.dataDir, train: train.length, test: test.length }, stage1, arms: [], stopped: true };
  const stage1State = model.namedParameters().map(([n, v]) => [n, v.value.toArray() as Float32Array] as const);

  const arms: ArmResult[] = [];
  for (const arm of o.arms) {
    for (const [n, data] of stage1State) model.namedParameters().find(([m]) => m === n)![1].value.write(data);
    const cfg: TrainConfig = { ...config, ...arm.config, latents: arm.latents };
    const teachers = arm.latents ? makeArmTeachers(p, model, arm.teachers, cfg) : [];
    const grid = Math.round(Math.sqrt(cfg.K));
    const projectors = teachers.map((t, i) => new RepaProjector(model.config.decoder.hiddenSize, cfg.projectorHidden, t.dim, [grid, grid], t.grid, { seed: cfg.seed + 100 + i }));
    const t2 = Date.now();
    const progress = new Progress(metrics, `[${arm.name}] `);
    const s2 = await trainStage({
      model, stage: 2, config: cfg, data: encodeSamples(p, model, train, arm.latents ? cfg.K : 0), image: p.image, tokens: p.ids,
      projectors, teachers, progress, arm: arm.name, checkpointDir: path.join(o.outDir, `checkpoint-${arm.name}`), resume: o.resume,
      shouldStop: o.shouldStop,
    });
    await progress.close();
    const trainSeconds = (Date.now() - t2) / 1000;
    if (s2.stopped) return { config, dataset: { dir: o.dataDir, train: train.length, test: test.length }, stage1, arms, stopped: true };
    await saveModel(path.join(o.outDir, `model-${arm.name}`), model, p.tok, cfg, { arm: arm.name });
    const policies: ('auto' | 'force' | 'off')[] = arm.latents ? arm.evalPolicies ?? ['auto'] : ['off'];
    for (const policy of policies) {
      const name = policies.length > 1 ? `${arm.name} (${policy})` : arm.name;
      log(`[${name}] evaluating on ${test.length} test samples (latents ${policy})`);
      const ev = await evaluateModel(p, model, evalItems(p, model, test), policy, cfg.K);
      log(`[${name}] accuracy ${(ev.accuracy * 100).toFixed(1)}% (${ev.latentSegmentsPerSample.toFixed(2)} latent segments per answer)`);
      const capped: Record<string, EvalResult> = {};
      for (const cap of arm.evalStepCaps ?? []) {
        capped[cap] = await evaluateModel(p, model, evalItems(p, model, test), policy, cfg.K, cap);
        log(`[${name}] at most ${cap} reasoning step(s): accuracy ${(capped[cap].accuracy * 100).toFixed(1)}%`);
      }
      arms.push({ name, eval: ev, capped: arm.evalStepCaps ? capped : undefined, trainSeconds, finalLoss: s2.losses[s2.losses.length - 1] ?? NaN });
    }
    for (const pr of projectors) pr.dispose();
  }
  model.dispose();
  return { config, dataset: { dir: o.dataDir, train: train.length, test: test.length }, stage1, arms, stopped: false };
}
