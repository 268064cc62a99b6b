// Deterministic multi-view 3D scenes: a floor and 3-6 primitive objects (cube, sphere,
// cylinder, cone) in one of eight colours and three sizes, placed without overlap, and N
// cameras looking at the scene from different azimuths and elevations around it (a walk
// around the table, as in a VSI-Bench video). Each camera sees only part of the scene, so
// questions about several objects need several views.
//
// World frame: y is up, the floor is the plane y = 0, lengths are in "metres".
// Camera frame: OpenCV axes (x right, y down, z forward).
import { ValrError } from '../errors';
import { checkSeed, Rng } from './prng';

export type Vec3 = [number, number, number];

export const SHAPES = ['cube', 'sphere', 'cylinder', 'cone'] as const;
export type ShapeName = (typeof SHAPES)[number];
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'cyan', 'orange', 'gray'] as const;
export type ColourName = (typeof COLOURS)[number];
export const SIZES = ['small', 'medium', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

/** Radius (sphere, cylinder, cone base) or half-edge (cube) of each size; every object is 2*scale tall. */
export const SIZE_SCALE: Readonly<Record<SizeName, number>> = Object.freeze({ small: 0.35, medium: 0.5, large: 0.7 });

/** Linear RGB albedo of each colour name. */
export const COLOUR_RGB: Readonly<Record<ColourName, Vec3>> = Object.freeze({
  red: [0.85, 0.12, 0.12],
  green: [0.15, 0.7, 0.2],
  blue: [0.15, 0.3, 0.92],
  yellow: [0.95, 0.85, 0.15],
  purple: [0.55, 0.2, 0.75],
  cyan: [0.15, 0.8, 0.85],
  orange: [0.97, 0.5, 0.08],
  gray: [0.42, 0.42, 0.42],
});

export interface SceneObject {
  /** Index in scene.objects; also the value in a render's objectId map. */
  index: number;
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  /** SIZE_SCALE[size]: radius or half-edge; the object is 2*scale tall. */
  scale: number;
  /** Centre of the object's base, on the floor (y = 0). */
  position: Vec3;
  /** Centre of its bounding box: position + (0, scale, 0). Distances are measured between these. */
  center: Vec3;
  /** Rotation about the vertical axis in radians (cubes; 0 for the round shapes). */
  rotationY: number;
}

/** Pinhole intrinsics in pixels; pixel (u, v) covers [u, u+1) x [v, v+1), its centre is (u+0.5, v+0.5). */
export interface CameraIntrinsics {
  width: number;
  height: number;
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

export interface Camera {
  index: number;
  azimuthDeg: number;
  elevationDeg: number;
  /** Distance from the camera to its target. */
  distance: number;
  /** Vertical field of view. */
  fovYDeg: number;
  position: Vec3;
  /** The floor point the camera looks at. */
  target: Vec3;
  intrinsics: CameraIntrinsics;
  /**
   * World -> camera, row-major 3x4 [R | t] with OpenCV axes (x right, y down, z forward):
   * x_cam = R x_world + t. R's rows are the camera's right, down and forward directions.
   */
  worldToCamera: number[];
}

export interface Floor {
  /** The floor is the square |x|, |z| <= halfSize at y = 0; beyond it is background. */
  halfSize: number;
  checker: boolean;
  /** Checker tile edge length. */
  tile: number;
  /** Albedo of the even and odd tiles (equal when the floor is plain). */
  colours: [Vec3, Vec3];
}

export interface Light {
  /** Unit vector towards the (directional) light. */
  direction: Vec3;
  ambient: number;
  diffuse: number;
}

export interface Scene {
  id: string;
  seed: number;
  floor: Floor;
  light: Light;
  objects: SceneObject[];
  cameras: Camera[];
}

export interface SceneOptions {
  seed: number;
  /** Defaults to `scene-<seed>`. */
  id?: string;
  /** Number of cameras, 1..8 (the datasets use 2..6). Default 3. */
  numViews?: number;
  /** Inclusive range of the object count. Default [3, 6]; at most 8. */
  numObjects?: [number, number];
  /** Image size the cameras' intrinsics are made for. Default 32 x 32. */
  width?: number;
  height?: number;
}

/** Objects are placed with their footprint inside this disc around the origin. */
export const PLACEMENT_RADIUS = 4.0;
const MIN_GAP = 0.25;
const FOV_Y_DEG = 40;

/** Radius of the object's footprint on the floor (a rotated cube reaches its corners). */
export function footprintRadius(o: Pick<SceneObject, 'shape' | 'scale'>): number {
  return o.shape === 'cube' ? o.scale * Math.SQRT2 : o.scale;
}

/** "red cube": how questions and steps name an object (unique within a scene). */
export function objectName(o: Pick<SceneObject, 'colour' | 'shape'>): string {
  return `${o.colour} ${o.shape}`;
}

export function cameraIntrinsics(fovYDeg: number, width: number, height: number): CameraIntrinsics {
  const fy = height / 2 / Math.tan((fovYDeg * Math.PI) / 360);
  return { width, height, fx: fy, fy, cx: width / 2, cy: height / 2 };
}

/** Projects a world point: pixel coordinates (u, v) and the depth along the camera's z axis. */
export function projectPoint(camera: Camera, p: readonly number[]): { u: number; v: number; depth: number } {
  const m = camera.worldToCamera;
  const x = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
  const y = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7];
  const z = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
  const k = camera.intrinsics;
  return { u: k.fx * (x / z) + k.cx, v: k.fy * (y / z) + k.cy, depth: z };
}

function checkInt(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new ValrError('ERR_VALR_ARGUMENT', `${what} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}
function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
function normalize(a: Vec3): Vec3 {
  const n = Math.hypot(a[0], a[1], a[2]);
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** A camera at `position` looking at `target` (world up = +y). */
export function lookAtCamera(index: number, position: Vec3, target: Vec3, fovYDeg: number, width: number, height: number): Camera {
  const forward = normalize(sub(target, position));
  const right = normalize(cross(forward, [0, 1, 0]));
  const down = cross(forward, right);
  const R = [right, down, forward];
  const m: number[] = [];
  for (const row of R) m.push(row[0], row[1], row[2], -(row[0] * position[0] + row[1] * position[1] + row[2] * position[2]));
  const d = sub(position, target);
  const dist = Math.hypot(d[0], d[1], d[2]);
  return {
    index,
    azimuthDeg: (Math.atan2(d[2], d[0]) * 180) / Math.PI,
    elevationDeg: (Math.asin(d[1] / dist) * 180) / Math.PI,
    distance: dist,
    fovYDeg,
    position,
    target,
    intrinsics: cameraIntrinsics(fovYDeg, width, height),
    worldToCamera: m,
  };
}

function placeObjects(rng: Rng, count: number): SceneObject[] | null {
  // A per-scene palette of 3-5 colours makes repeated colours (and so counting) common;
  // (colour, shape) pairs stay unique so "the red cube" names exactly one object.
  const palette = rng.shuffle(COLOURS.slice()).slice(0, rng.int(3, 5));
  const used = new Set<string>();
  const objects: SceneObject[] = [];
  for (let i = 0; i < count; i++) {
    let colour: ColourName, shape: ShapeName;
    let guard = 0;
    do {
      colour = rng.pick(palette);
      shape = rng.pick(SHAPES);
      if (++guard > 100) return null;
    } while (used.has(`${colour} ${shape}`));
    used.add(`${colour} ${shape}`);
    const size = rng.pick(SIZES);
    const scale = SIZE_SCALE[size];
    const rotationY = shape === 'cube' ? rng.range(0, Math.PI / 2) : 0;
    const r = footprintRadius({ shape, scale });
    let placed = false;
    for (let attempt = 0; attempt < 200 && !placed; attempt++) {
      const reach = PLACEMENT_RADIUS - r;
      const x = rng.range(-reach, reach), z = rng.range(-reach, reach);
      if (x * x + z * z > reach * reach) continue;
      let ok = true;
      for (const o of objects) {
        if (Math.hypot(x - o.position[0], z - o.position[2]) < r + footprintRadius(o) + MIN_GAP) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      objects.push({ index: i, shape, colour, size, scale, position: [x, 0, z], center: [x, scale, z], rotationY });
      placed = true;
    }
    if (!placed) return null;
  }
  return objects;
}

/**
 * Generates a scene from a seed. Same options -> the same scene (bit for bit).
 * Cameras walk around the scene like a person filming it: azimuths advance 55-85 degrees per
 * view, each camera 5.5-6.5 m from the centre (outside the placement disc, so never inside an
 * object) and 1.8-3 m high, looking at a "focus" object (the next one, in a per-scene random
 * order, on the camera's half of the scene; the aim point is jittered by up to 0.4 m and
 * set at half the object's centre height) with a 40-degree vertical field of view: each view
 * is centred on something and shows only part of the scene.
 */
export function generateScene(options: SceneOptions): Scene {
  if (options === null || typeof options !== 'object') throw new ValrError('ERR_VALR_ARGUMENT', 'generateScene: options must be an object');
  const seed = checkSeed(options.seed, 'generateScene: seed');
  const numViews = checkInt(options.numViews ?? 3, 1, 8, 'generateScene: numViews');
  const [lo, hi] = options.numObjects ?? [3, 6];
  checkInt(lo, 1, 8, 'generateScene: numObjects[0]');
  checkInt(hi, lo, 8, 'generateScene: numObjects[1]');
  const width = checkInt(options.width ?? 32, 1, 4096, 'generateScene: width');
  const height = checkInt(options.height ?? 32, 1, 4096, 'generateScene: height');
  const id = options.id ?? `scene-${seed}`;
  if (typeof id !== 'string' || id === '') throw new ValrError('ERR_VALR_ARGUMENT', 'generateScene: id must be a non-empty string');

  const rng = new Rng(seed);
  const count = rng.int(lo, hi);
  let objects: SceneObject[] | null = null;
  for (let attempt = 0; attempt < 50 && !objects; attempt++) objects = placeObjects(rng, count);
  if (!objects) throw new ValrError('ERR_VALR_INTERNAL', `generateScene: could not place ${count} objects (seed ${seed})`);

  const checker = rng.float() < 0.7;
  const base: Vec3 = [0.74, 0.72, 0.68];
  const dark: Vec3 = [0.6, 0.58, 0.55];
  const floor: Floor = { halfSize: 6, checker, tile: 1, colours: checker ? [base, dark] : [base, base] };
  const lightAz = rng.range(0, 2 * Math.PI), lightEl = rng.range((45 * Math.PI) / 180, (70 * Math.PI) / 180);
  const light: Light = {
    direction: [Math.cos(lightEl) * Math.cos(lightAz), Math.sin(lightEl), Math.cos(lightEl) * Math.sin(lightAz)],
    ambient: 0.45,
    diffuse: 0.6,
  };

  const cameras: Camera[] = [];
  let az = rng.range(0, 2 * Math.PI);
  const focusOrder = rng.shuffle(objects.slice());
  let focusNext = 0;
  for (let i = 0; i < numViews; i++) {
    if (i > 0) az += (rng.range(55, 85) * Math.PI) / 180;
    const radius = rng.range(5.5, 6.5);
    const camHeight = rng.range(1.8, 3.0);
    const position: Vec3 = [radius * Math.cos(az), camHeight, radius * Math.sin(az)];
    // focus: the next object (in a per-scene random order) on the camera's half of the scene
    let focus: SceneObject | undefined;
    for (let k = 0; k < focusOrder.length && !focus; k++) {
      const o = focusOrder[(focusNext + k) % focusOrder.length];
      if (o.position[0] * Math.cos(az) + o.position[2] * Math.sin(az) > -0.5) {
        focus = o;
        focusNext = (focusNext + k + 1) % focusOrder.length;
      }
    }
    focus ??= focusOrder[focusNext++ % focusOrder.length];
    const target: Vec3 = [focus.center[0] + rng.range(-0.4, 0.4), focus.center[1] * 0.5, focus.center[2] + rng.range(-0.4, 0.4)];
    cameras.push(lookAtCamera(i, position, target, FOV_Y_DEG, width, height));
  }
  return { id, seed, floor, light, objects, cameras };
}
