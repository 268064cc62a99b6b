export { Module, Initializer, parameter } from './module';
export { Linear, Embedding, RMSNorm, LayerNorm } from './layers';
export { Qwen2ForCausalLM, Qwen2Model, KVCache, checkDecoderConfig, type DecoderConfig, type DecoderInput, type DecoderOutput } from './qwen2';
export { VisionTower, patchify, patchGrid, type VisionConfig } from './vit';
export { Projector } from './projector';
export { MultimodalModel, type MLLMConfig, type MLLMInput } from './mllm';
export { presets, type Preset } from './presets';
export { loadModel, decoderConfigFromHF } from './load';
