export { DecoderSession } from './decoder-session';
export { generate, generateStream, defaultTapLayer, type GenerateOptions, type GenerateEvent, type GenerateResult } from './generate';
export { splitLatentSample, type LatentTokens, type SampleLayout } from './layout';
export { latentForward, type LatentForwardOptions, type LatentForwardResult } from './train-forward';
export { RepaProjector, silu } from './repa-projector';
export { sampleToken, SeededRandom, type SamplingOptions } from './sampling';
