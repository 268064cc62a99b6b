export { defaultConfig, type TrainConfig, type StageConfig, type TeacherKind } from './config';
export { trainStage, type StageRun, type StageResult, type EncodedSample, type TeacherLike } from './trainer';
export { evaluate, type EvalItem, type EvalResult, type EvalOptions } from './evaluate';
export { saveCheckpoint, loadCheckpoint, readCheckpointState, type CheckpointState } from './checkpoint';
export { learningRate } from './schedule';
export { Progress } from './progress';
