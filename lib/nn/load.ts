// Loading Hugging Face causal-LM checkpoints (Qwen2ForCausalLM, LlamaForCausalLM):
// a directory with config.json and model.safetensors, or shards listed in
// model.safetensors.index.json. bf16/f16 weights are converted to float32.
import * as fs from 'fs';
import * as path from 'path';
import { fail } from '../errors';
import { readSafetensors, readSafetensorsIndex, toFloat32 } from '../io/safetensors';
import type { Device } from '../tensor';
import { Qwen2ForCausalLM, type DecoderConfig } from './qwen2';

const SUPPORTED = ['Qwen2ForCausalLM', 'LlamaForCausalLM'];

/** transformers' config.json -> DecoderConfig (rope_theta at top level, or in rope_parameters in v5). */
export function decoderConfigFromHF(cfg: Record<string, any>, source = 'config.json'): DecoderConfig {
  const arch: string | undefined = cfg.architectures?.[0];
  if (arch && !SUPPORTED.includes(arch)) fail('ERR_VALR_ARGUMENT', `${source}: architecture ${arch} is not supported (${SUPPORTED.join(', ')})`);
  const num = (key: string, fallback?: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('ERR_VALR_ARGUMENT', `${source}: '${key}' must be a number, got ${JSON.stringify(cfg[key])}`);
    return v;
  };
  const ropeType = cfg.rope_parameters?.rope_type ?? cfg.rope_scaling?.rope_type ?? cfg.rope_scaling?.type ?? 'default';
  if (ropeType !== 'default') fail('ERR_VALR_ARGUMENT', `${source}: rope type '${ropeType}' is not supported (only 'default')`);
  const heads = num('num_attention_heads');
  const hidden = num('hidden_size');
  if (cfg.head_dim !== undefined && cfg.head_dim !== null && cfg.head_dim !== hidden / heads) {
    fail('ERR_VALR_ARGUMENT', `${source}: head_dim ${cfg.head_dim} != hidden_size / num_attention_heads is not supported`);
  }
  const isLlama = arch === 'LlamaForCausalLM' || cfg.model_type === 'llama';
  return {
    vocabSize: num('vocab_size'),
    hiddenSize: hidden,
    numLayers: num('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: num('num_key_value_heads', heads),
    intermediateSize: num('intermediate_size'),
    ropeTheta: cfg.rope_parameters?.rope_theta ?? num('rope_theta', 10000),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    tieWordEmbeddings: cfg.tie_word_embeddings ?? false,
    attentionBias: isLlama ? !!cfg.attention_bias : true, // Qwen2's q/k/v always carry a bias
    maxPositions: num('max_position_embeddings', 32768),
  };
}

/** Loads a Hugging Face checkpoint directory into a Qwen2ForCausalLM on `device`. */
export async function loadModel(dir: string, options: { device?: Device } = {}): Promise<Qwen2ForCausalLM> {
  const cfgPath = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgPath)) fail('ERR_VALR_ARGUMENT', `${dir}: no config.json (expected a Hugging Face model directory)`);
  let cfg: Record<string, any>;
  try {
    cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    return fail('ERR_VALR_ARGUMENT', `${cfgPath}: not valid JSON: ${(e as Error).message}`);
  }
  const config = decoderConfigFromHF(cfg, cfgPath);
  const model = new Qwen2ForCausalLM(config, { device: options.device });
  const byFile = new Map<string, string[]>();
  for (const [name, file] of await readSafetensorsIndex(dir)) byFile.set(file, [...(byFile.get(file) ?? []), name]);
  const state = new Map<string, Float32Array>();
  for (const file of byFile.keys()) {
    const st = await readSafetensors(path.resolve(dir, file)); // the index gives paths under dir
    for (const [name, rec] of st.tensors) state.set(name, toFloat32(rec, `${path.basename(file)}:${name}`));
  }
  if (config.tieWordEmbeddings) state.delete('lm_head.weight');
  try {
    model.loadStateDict(state, { strict: true });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
