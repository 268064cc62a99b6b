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
import { defaultTapLayer } from '../latent/generate';
import type { TrainConfig } from '../train/config';
import { evaluate, type EvalItem, type EvalResult } from '../train/evaluate';
import { blindBaseline, gateVerdict, heldOutCE, swapDonors, type BlindBaseline, type GateResult } from '../train/image-gate';
import { trainPerception, viewPerceptionBatches } from '../train/perception';
import { Progress } from '../train/progress';
import { trainStage, type EncodedSample, type TeacherLike } from '../train/trainer';
import { normalizeAnswer, type CotSample } from '../data/sequence';
import { captionSamples } from '../data/captions';
import { computeTeacherStats, meanFeatureBaseline, StandardizedTeacher, type TeacherStats } from '../teachers/standardize';
import { readSafetensorsSync, toFloat32 } from '../io/safetensors';

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

/** An evaluation on the test split with its image-use gate (see lib/train/image-gate.ts). */
export interface GatedEval {
  eval: EvalResult;
  /** the same model with every sample's images swapped for another sample's (same view count) */
  swapped: EvalResult;
  gate: GateResult;
}

export interface AlignmentReport {
  teacher: string;
  /** held-out cosine of psi(Up(taps)) to the (standardised) targets */
  cosine: number;
  /** what the best image-free prediction (each position's mean direction) scores on the same targets */
  baseline: number;
}

export interface ArmResult extends GatedEval {
  name: string;
  /** the latent policy it was evaluated with ('off' for arms without latents) */
  policy: 'auto' | 'force' | 'off';
  /** accuracy with generation capped at N reasoning steps, by N */
  capped?: Record<string, EvalResult>;
  alignment?: AlignmentReport[];
  trainSeconds: number;
  finalLoss: number;
}

export interface ExperimentResult {
  config: TrainConfig;
  dataset: { dir: string; train: number; test: number };
  perception: { seconds: number; steps: number; kindAccuracy: number };
  stage1: { seconds: number; finalLoss: number } & Partial<GatedEval>;
  blind: BlindBaseline;
  arms: ArmResult[];
  stopped: boolean;
}

export interface PreparedData {
  ds: LoadedDataset;
  tok: WordTokenizer;
  ids: ReturnType<typeof specialIds>;
  image: (id: string) => Float32Array;
  /** the scene an image id is a view of */
  sceneOf: (imageId: string) => LoadedDataset['scenes'][number];
}

/**
 * Loads the dataset with a tokenizer: the one given (a trained model's: its ids are what the
 * model knows), else the data dir's tokenizer.json, else one built from the training texts.
 */
export function prepareData(dataDir: string, tokenizer?: WordTokenizer): PreparedData {
  const ds = loadDataset(dataDir);
  const tokFile = path.join(dataDir, 'tokenizer.json');
  let tok: WordTokenizer;
  if (tokenizer) tok = tokenizer;
  else if (fs.existsSync(tokFile)) tok = WordTokenizer.fromJSON(JSON.parse(fs.readFileSync(tokFile, 'utf8')));
  else {
    const captions = captionSamples(ds.scenes.filter((sc) => sc.split === 'train'), ds.meta.visibleMinPixels);
    const texts = [...ds.splits.train, ...captions].flatMap((s) => [s.question, ...s.steps.map((st) => st.text), s.answer]);
    tok = WordTokenizer.build(texts);
  }
  const owner = new Map(ds.scenes.flatMap((sc) => sc.images.map((im) => [im, sc] as const)));
  const sceneOf = (id: string) => owner.get(id) ?? fail('ERR_VALR_ARGUMENT', `image '${id}' is not a view of any scene`);
  return { ds, tok, ids: specialIds(tok), image: (id) => ds.view(id).rgb, sceneOf };
}

/** Words of the samples' texts that the tokenizer does not know (they would read as <unk>). */
export function unknownWords(p: PreparedData, samples: readonly CotSample[]): string[] {
  const unk = new Set<string>();
  for (const s of samples) {
    for (const text of [s.question, ...s.steps.map((st) => st.text), s.answer]) {
      const ids = p.tok.encode(text, { allowSpecial: false });
      if (ids.includes(p.ids.unk)) for (const w of text.toLowerCase().split(/[^a-z0-9]+/)) if (w && p.tok.encode(w, { allowSpecial: false }).includes(p.ids.unk)) unk.add(w);
    }
  }
  return [...unk].sort();
}

export function modelConfig(p: PreparedData, config: TrainConfig): MLLMConfig {
  const preset = presets[config.preset];
  return {
    decoder: { ...preset.decoder, vocabSize: p.tok.vocabSize },
    vision: { ...preset.vision, imageSize: p.ds.meta.imageSize },
    imageTokenId: p.ids.image,
  };
}

export function encodeSamples(p: PreparedData, model: MultimodalModel, samples: readonly CotSample[], latentK: number, viewMarkers: boolean): EncodedSample[] {
  return samples.map((s) => {
    const seq = buildSequence(s, p.tok, { tokensPerImage: model.tokensPerImage, latentK, viewMarkers });
    return { ids: seq.ids, labels: seq.labels, images: [...s.images], segmentImages: seq.stepTargets.map((v: number) => s.images[v]) };
  });
}

export function evalItems(p: PreparedData, model: MultimodalModel, samples: readonly Sample[], viewMarkers: boolean): EvalItem[] {
  return samples.map((s) => {
    const seq = buildSequence(s, p.tok, { tokensPerImage: model.tokensPerImage, latentK: 0, viewMarkers });
    return {
      prompt: seq.ids.slice(0, seq.promptLength), images: s.images, answer: s.answer, family: s.family, numViews: s.numViews,
      referenceTokens: seq.ids.length - seq.promptLength, // the budget is derived from it (markers are free)
    };
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

export interface GateContext {
  test: readonly Sample[];
  /** donors[i]: the test sample whose images replace sample i's */
  donors: number[];
  blind: BlindBaseline;
  config: TrainConfig;
}

/**
 * Accuracy with real and with swapped images, teacher-forced CE with both, and the gate's
 * verdict. With projectors, the held-out alignment per teacher rides along in ce.alignment.
 */
export async function evaluateWithGate(
  p: PreparedData, model: MultimodalModel, g: GateContext, policy: 'auto' | 'force' | 'off', latents: boolean,
  extra: { projectors?: RepaProjector[]; teachers?: TeacherLike[]; tapLayer?: number } = {},
): Promise<GatedEval & { alignment?: number[] }> {
  const K = latents ? g.config.K : 0;
  const items = evalItems(p, model, g.test, g.config.viewMarkers);
  const ev = await evaluateModel(p, model, items, policy, K);
  const sw = await evaluateModel(p, model, items.map((it, i) => ({ ...it, images: g.test[g.donors[i]].images })), policy, K);
  const enc = encodeSamples(p, model, g.test, K, g.config.viewMarkers);
  const ceOpts = { K, tokens: p.ids, image: p.image, tapLayer: extra.tapLayer, projectors: extra.projectors, teachers: extra.teachers };
  const ceReal = heldOutCE(model, enc, ceOpts);
  const ceSwapped = heldOutCE(model, enc, { ...ceOpts, projectors: undefined, teachers: undefined, images: (i) => g.test[g.donors[i]].images });
  const ok = (e: EvalResult) => e.predictions.map((x) => x.answer === x.expected);
  const { alignment, ...ceR } = ceReal;
  return { eval: ev, swapped: sw, gate: gateVerdict(ok(ev), ok(sw), ceR, ceSwapped, g.blind, g.config.seed), alignment };
}

/** Standardises a teacher's features over (at most 1000 of) the training images, as config says. */
function standardized(t: Teacher, trainImages: readonly string[], config: TrainConfig): { teacher: Teacher; stats?: TeacherStats } {
  if (config.teacherStandardization === 'none') return { teacher: t };
  const stats = computeTeacherStats(t, trainImages, { mode: config.teacherStandardization, maxImages: 1000 });
  return { teacher: new StandardizedTeacher(t, stats), stats };
}

/** Stage 0: the perception stage on the training views; its result is kept in outDir so a resumed run skips it. */
async function perceptionStage(p: PreparedData, model: MultimodalModel, config: TrainConfig, trainImages: readonly string[], o: ExperimentOptions, log: (l: string) => void) {
  const file = path.join(o.outDir, 'checkpoint-stage0', 'vision.safetensors');
  const parts = [...model.vision_tower.namedParameters('vision_tower.'), ...model.projector.namedParameters('projector.')];
  if (o.resume && fs.existsSync(file)) {
    const f = readSafetensorsSync(file);
    for (const [name, v] of parts) v.value.write(toFloat32(f.tensors.get(name) ?? fail('ERR_VALR_ARGUMENT', `${file} lacks '${name}'`), name));
    log(`[stage 0] perception weights loaded from ${file}`);
    return { seconds: 0, steps: config.perception.steps, kindAccuracy: NaN, stopped: false };
  }
  const started = Date.now();
  const grid = model.config.vision.imageSize / model.config.vision.patchSize;
  const r = await trainPerception(model, {
    steps: config.perception.steps, lr: config.perception.lr, seed: config.seed,
    batch: viewPerceptionBatches(trainImages, { view: (id) => p.ds.view(id), objects: (id) => p.sceneOf(id).objects, grid, batchSize: config.perception.batchSize, seed: config.seed }),
    onStep: (s) => { if (s.step % 250 === 0 || s.step === s.steps) log(`[stage 0] perception step ${s.step}/${s.steps} loss ${s.loss.toFixed(4)}`); },
    shouldStop: o.shouldStop,
  });
  const stopped = r.steps < config.perception.steps;
  if (!stopped) {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of parts) tensors[name] = { shape: [...v.value.shape], data: v.value.toArray() as Float32Array };
    await writeSafetensorsAtomic(file, tensors, { format: 'valr-stage0/1' });
  }
  log(`[stage 0] perception: ${r.steps} steps, patch-kind accuracy ${(r.kindAccuracy * 100).toFixed(1)}% (last 10% of steps)`);
  return { seconds: (Date.now() - started) / 1000, steps: r.steps, kindAccuracy: r.kindAccuracy, stopped };
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
  const trainImages = [...new Set(train.flatMap((s) => s.images))];
  const model = new MultimodalModel(modelConfig(p, config), { seed: config.seed });
  const metrics = path.join(o.outDir, 'metrics.jsonl');
  const dataset = { dir: o.dataDir, train: train.length, test: test.length };
  const blind = blindBaseline(train, test, (a) => normalizeAnswer(a, p.tok));
  const g: GateContext = { test, donors: swapDonors(test, config.seed), blind, config };
  log(`model: ${model.parameterCount().toLocaleString()} parameters; ${train.length} training and ${test.length} test samples; blind baseline ${(blind.accuracy * 100).toFixed(1)}%`);

  // Stage 0: perception (stands in for a pretrained vision encoder).
  let perception = { seconds: 0, steps: 0, kindAccuracy: NaN };
  if (config.perception.steps > 0) {
    const r = await perceptionStage(p, model, config, trainImages, o, log);
    perception = { seconds: r.seconds, steps: r.steps, kindAccuracy: r.kindAccuracy };
    if (r.stopped) return { config, dataset, perception, stage1: { seconds: 0, finalLoss: NaN }, blind, arms: [], stopped: true };
  }

  // Stage 1: CoT SFT (shared by every arm).
  const t1 = Date.now();
  const progress1 = new Progress(metrics, '[stage 1] ');
  const trainScenes = new Set(train.map((s) => s.sceneId));
  const captions = captionSamples(p.ds.scenes.filter((sc) => trainScenes.has(sc.id)), p.ds.meta.visibleMinPixels).slice(0, Math.round(config.captionRatio * train.length));
  if (captions.length) log(`[stage 1] CoT SFT on ${train.length} samples and ${captions.length} single-view captions`);
  const s1 = await trainStage({
    model, stage: 1, config, data: encodeSamples(p, model, [...train, ...captions], 0, config.viewMarkers), image: p.image, tokens: p.ids,
    progress: progress1, checkpointDir: path.join(o.outDir, 'checkpoint-stage1'), resume: o.resume, shouldStop: o.shouldStop,
  });
  await progress1.close();
  const stage1 = { seconds: (Date.now() - t1) / 1000, finalLoss: s1.losses[s1.losses.length - 1] ?? NaN };
  if (s1.stopped) return { config, dataset, perception, stage1, blind, arms: [], stopped: true };
  const s1Eval = await evaluateWithGate(p, model, g, 'off', false);
  log(`[stage 1] ${s1Eval.gate.verdict}`);
  const stage1State = model.namedParameters().map(([n, v]) => [n, v.value.toArray() as Float32Array] as const);

  const arms: ArmResult[] = [];
  const teacherCache = new Map<string, { teacher: Teacher; stats?: TeacherStats; baseline: number }>();
  for (const arm of o.arms) {
    for (const [n, data] of stage1State) model.namedParameters().find(([m]) => m === n)![1].value.write(data);
    const cfg: TrainConfig = { ...config, ...arm.config, latents: arm.latents };
    // Teachers are frozen: made, standardised and baselined once per kind and shared by the arms
    // (the 'own' teacher reads the tower, which every arm leaves as stage 1 left it).
    const raw = arm.latents ? makeArmTeachers(p, model, arm.teachers, cfg) : [];
    const teachers = raw.map((t, i) => {
      const key = JSON.stringify(arm.teachers[i]);
      let e = teacherCache.get(key);
      if (!e) {
        const st = standardized(t, trainImages, cfg);
        const b = meanFeatureBaseline(st.teacher, trainImages.slice(0, 500), [...new Set(test.flatMap((s) => s.images))].slice(0, 300));
        e = { ...st, baseline: b.perPositionDirection };
        teacherCache.set(key, e);
      }
      return e;
    });
    const grid = Math.round(Math.sqrt(cfg.K));
    const projectors = teachers.map((t, i) => new RepaProjector(model.config.decoder.hiddenSize, cfg.projectorHidden, t.teacher.dim, [grid, grid], t.teacher.grid, { seed: cfg.seed + 100 + i }));
    const tapLayer = cfg.tapLayer ?? defaultTapLayer(model.config.decoder.numLayers);
    const t2 = Date.now();
    const progress = new Progress(metrics, `[${arm.name}] `);
    const s2 = await trainStage({
      model, stage: 2, config: cfg, data: encodeSamples(p, model, train, arm.latents ? cfg.K : 0, cfg.viewMarkers), image: p.image, tokens: p.ids,
      projectors, teachers: teachers.map((t) => t.teacher), progress, arm: arm.name, checkpointDir: path.join(o.outDir, `checkpoint-${arm.name}`), resume: o.resume,
      shouldStop: o.shouldStop,
    });
    await progress.close();
    const trainSeconds = (Date.now() - t2) / 1000;
    if (s2.stopped) return { config, dataset, perception, stage1: { ...stage1, ...s1Eval }, blind, arms, stopped: true };
    await saveModel(path.join(o.outDir, `model-${arm.name}`), model, p.tok, cfg, { arm: arm.name, teacherStats: teachers.map((t) => t.stats ?? null) });
    const policies: ('auto' | 'force' | 'off')[] = arm.latents ? arm.evalPolicies ?? ['auto'] : ['off'];
    for (const policy of policies) {
      const name = policies.length > 1 ? `${arm.name} (${policy})` : arm.name;
      log(`[${name}] evaluating on ${test.length} test samples (latents ${policy}), with real and with swapped images`);
      const ge = await evaluateWithGate(p, model, g, policy, arm.latents, { projectors, teachers: teachers.map((t) => t.teacher), tapLayer });
      log(`[${name}] accuracy ${(ge.eval.accuracy * 100).toFixed(1)}% (${ge.eval.latentSegmentsPerSample.toFixed(2)} latent segments per answer); ${ge.gate.verdict}`);
      const alignment = ge.alignment?.map((cosine, i) => ({ teacher: teachers[i].teacher.name, cosine, baseline: teachers[i].baseline }));
      for (const a of alignment ?? []) log(`[${name}] REPA ${a.teacher}: held-out cosine ${a.cosine.toFixed(3)} vs ${a.baseline.toFixed(3)} for the best image-free prediction`);
      const capped: Record<string, EvalResult> = {};
      for (const cap of arm.evalStepCaps ?? []) {
        capped[cap] = await evaluateModel(p, model, evalItems(p, model, test, cfg.viewMarkers), policy, arm.latents ? cfg.K : 0, cap);
        log(`[${name}] at most ${cap} reasoning step(s): accuracy ${(capped[cap].accuracy * 100).toFixed(1)}%`);
      }
      arms.push({ name, policy, eval: ge.eval, swapped: ge.swapped, gate: ge.gate, alignment, capped: arm.evalStepCaps ? capped : undefined, trainSeconds, finalLoss: s2.losses[s2.losses.length - 1] ?? NaN });
    }
    for (const pr of projectors) pr.dispose();
  }
  model.dispose();
  return { config, dataset, perception, stage1: { ...stage1, ...s1Eval }, blind, arms, stopped: false };
}
