// REPA teachers: frozen patch features phi_m(I) that the latent slots are aligned to.
export { type Teacher, patchCount, stackFeatures } from './teacher';
export { type RenderedView, type ViewAccessor, FLOOR_ID, BACKGROUND_ID, checkView, poolBins } from './view';
export {
  GeometryTeacher,
  type GeometryTeacherOptions,
  type GeometryLayout,
  GEOMETRY_BASE_DIM,
  geometryLayout,
  geometryStandardization,
  geometryFeatures,
  estimateNormals,
} from './geometry';
export { AppearanceTeacher, type AppearanceTeacherOptions, APPEARANCE_COLOR_DIMS } from './appearance';
export { OwnVisionTeacher, type OwnVisionTeacherOptions, type ImageAccessor } from './own';
export { PrecomputedTeacher, type PrecomputedTeacherOptions, writePrecomputedTeacher, PRECOMPUTED_FORMAT } from './precomputed';
export { makeTeacher, makeTeachers, CachedTeacher, LruCache, TEACHER_SPEC_DEFAULTS, type TeacherSpec, type TeacherKind, type TeacherDeps, type CacheOptions } from './registry';
export {
  computeTeacherStats,
  checkTeacherStats,
  StandardizedTeacher,
  meanFeatureBaseline,
  cosineToTargets,
  MIN_STD,
  DEFAULT_MIN_STD_RATIO,
  type TeacherStats,
  type TeacherStatsOptions,
  type StandardizeMode,
  type MeanFeatureBaseline,
} from './standardize';
