// The data side of valr-node: synthetic multi-view scenes and their renders, VSI-Bench-style
// questions with one chain-of-thought step per view, the dataset on disk, a word-level
// tokenizer, the CoT -> latent-interleaved sequence rewrite and users' own JSONL data.
export { Rng, hashSeed } from './prng';
export {
  SHAPES, COLOURS, SIZES, SIZE_SCALE, COLOUR_RGB, PLACEMENT_RADIUS,
  generateScene, cameraIntrinsics, projectPoint, objectName, footprintRadius, lookAtCamera,
  type Vec3, type ShapeName, type ColourName, type SizeName, type SceneObject, type Camera,
  type CameraIntrinsics, type Floor, type Light, type Scene, type SceneOptions,
} from './scene';
export {
  renderView, renderScene, renderObjectIds, objectPixelCounts, FLOOR_ID, BACKGROUND_ID, BACKGROUND_DEPTH,
  type RenderedView, type RenderOptions,
} from './render';
export {
  FAMILIES, makeQuestion, visibilityFromCounts, defaultMinPixels, sideOf,
  type Family, type Step, type Question, type Visibility, type QuestionOptions,
} from './questions';
export {
  SPLITS, DATASET_FORMAT, DATASET_VERSION, generateDataset, writeDataset, makeDataset, loadDataset, parseSample, viewTensors,
  type Split, type Sample, type SceneRecord, type DatasetOptions, type DatasetMeta, type SplitCounts,
  type GeneratedDataset, type LoadedDataset,
} from './dataset';
export {
  WordTokenizer, SPECIAL_TOKENS, specialIds,
  type SpecialIds, type SpecialRole, type TokenizerBuildOptions, type EncodeOptions, type DecodeOptions,
  type WordTokenizerJSON, type PreTokenizerStep, type NormalizerStep,
} from './tokenizer';
export {
  buildSequence, parseAnswer, normalizeAnswer, sampleTexts, IGNORE_INDEX,
  type CotSample, type SequenceOptions, type BuiltSequence,
} from './sequence';
export {
  loadUserJsonl, parseUserJsonl, decodeImageFile, rawToRgb, resizeImage,
  type UserSample, type UserDataset, type RawImage, type LoadUserOptions,
} from './user-data';
export { writeFileAtomic, parseJsonl, toJsonl } from './files';
export { BpeTokenizer } from './bpe-tokenizer';
export { loadTokenizerJson } from './hf-tokenizer';
