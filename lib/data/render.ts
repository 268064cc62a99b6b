// A small deterministic software ray caster for the synthetic scenes: one ray per pixel
// centre, analytic ray-primitive intersection (plane, sphere, oriented box, capped
// cylinder, cone), Lambert shading with ambient light and hard shadows from a directional
// light, a checkered or plain floor and a dark background. Arithmetic is plain float64
// (no Math.random, no threads), so the same scene gives the same bytes on every run.
import { ValrError } from '../errors';
import { cameraIntrinsics, COLOUR_RGB, footprintRadius, type Camera, type CameraIntrinsics, type Scene } from './scene';

export interface RenderedView {
  /** [3, H, W] in [0, 1], channel-major. */
  rgb: Float32Array;
  /** [H, W]: Euclidean distance from the camera centre to the hit along the ray; BACKGROUND_DEPTH where nothing is hit. */
  depth: Float32Array;
  /** [H, W]: index into scene.objects, FLOOR_ID for the floor, BACKGROUND_ID for nothing. */
  objectId: Int32Array;
  /** [3, H, W]: world coordinates of the hit point, 0 for background. */
  xyz: Float32Array;
  width: number;
  height: number;
}

export interface RenderOptions {
  /** Default: the camera's intrinsics' size (the scene's resolution). Other sizes keep the field of view. */
  width?: number;
  height?: number;
  /** Cast shadow rays (default true). */
  shadows?: boolean;
}

export const FLOOR_ID = -1;
export const BACKGROUND_ID = -2;
/** Depth written for background pixels (every hit is closer than this). */
export const BACKGROUND_DEPTH = 100;

const EPS = 1e-6;
const SHAPE_CODE = { cube: 0, sphere: 1, cylinder: 2, cone: 3 } as const;

/** Primitive parameters flattened for the inner loop. */
interface Prim {
  code: number;
  x: number; // base centre x, z
  z: number;
  s: number; // scale
  cos: number; // cube rotation
  sin: number;
  /** squared radius of a bounding sphere centred at (x, s, z) */
  r2: number;
}

// Scratch normal written by the intersectors (one ray at a time).
const N = new Float64Array(3);

/** Nearest hit t > tMin of the ray with the primitive, or Infinity; the normal goes to N. */
function intersect(p: Prim, ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, tMin: number): number {
  const s = p.s;
  const rx = ox - p.x, rz = oz - p.z;
  {
    // bounding-sphere rejection
    const ry = oy - s;
    const b = rx * dx + ry * dy + rz * dz;
    const c = rx * rx + ry * ry + rz * rz - p.r2;
    if ((c > 0 && b > 0) || b * b - c < 0) return Infinity;
  }
  switch (p.code) {
    case 1:
      return sphere(s, rx, oy - s, rz, dx, dy, dz, tMin);
    case 0:
      return box(p, rx, oy - s, rz, dx, dy, dz, tMin);
    case 2:
      return cylinder(s, rx, oy, rz, dx, dy, dz, tMin);
    default:
      return cone(s, rx, oy, rz, dx, dy, dz, tMin);
  }
}

/** Sphere of radius s at the origin; (rx, ry, rz) is the ray origin relative to the centre. */
function sphere(s: number, rx: number, ry: number, rz: number, dx: number, dy: number, dz: number, tMin: number): number {
  const b = rx * dx + ry * dy + rz * dz;
  const c = rx * rx + ry * ry + rz * rz - s * s;
  const disc = b * b - c;
  if (disc < 0) return Infinity;
  const q = Math.sqrt(disc);
  let t = -b - q;
  if (t <= tMin) t = -b + q;
  if (t <= tMin) return Infinity;
  N[0] = (rx + t * dx) / s;
  N[1] = (ry + t * dy) / s;
  N[2] = (rz + t * dz) / s;
  return t;
}

/** Slab interval of one axis, folded into the running [near, far] (module scratch, no allocation). */
let tNear = 0, tFar = 0, axisNear = 0, signNear = 0, axisFar = 0, signFar = 0;
function slab(axis: number, o: number, d: number, s: number): boolean {
  if (Math.abs(d) < 1e-12) return o >= -s && o <= s;
  let t1 = (-s - o) / d, t2 = (s - o) / d, s1 = -1, s2 = 1;
  if (t1 > t2) {
    const t = t1;
    t1 = t2;
    t2 = t;
    s1 = 1;
    s2 = -1;
  }
  if (t1 > tNear) {
    tNear = t1;
    axisNear = axis;
    signNear = s1;
  }
  if (t2 < tFar) {
    tFar = t2;
    axisFar = axis;
    signFar = s2;
  }
  return tNear <= tFar;
}

/** Cube: |lx|, |ly|, |lz| <= s around (x, s, z) in the frame rotated by rotationY. */
function box(p: Prim, rx: number, ry: number, rz: number, dx: number, dy: number, dz: number, tMin: number): number {
  const c = p.cos, sn = p.sin, s = p.s;
  tNear = -Infinity;
  tFar = Infinity;
  axisNear = axisFar = -1;
  if (!slab(0, c * rx - sn * rz, c * dx - sn * dz, s)) return Infinity;
  if (!slab(1, ry, dy, s)) return Infinity;
  if (!slab(2, sn * rx + c * rz, sn * dx + c * dz, s)) return Infinity;
  let t = tNear, axis = axisNear, sign = signNear;
  if (t <= tMin) {
    t = tFar;
    axis = axisFar;
    sign = signFar;
  }
  if (t <= tMin || axis < 0) return Infinity;
  // local normal sign * e_axis back to world: world = R(theta) local, R = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
  const nx = axis === 0 ? sign : 0, ny = axis === 1 ? sign : 0, nz = axis === 2 ? sign : 0;
  N[0] = c * nx + sn * nz;
  N[1] = ny;
  N[2] = -sn * nx + c * nz;
  return t;
}

/** Capped cylinder: radius s, 0 <= y <= 2s, axis through (x, z); (rx, rz) relative to the axis, oy absolute. */
function cylinder(s: number, rx: number, oy: number, rz: number, dx: number, dy: number, dz: number, tMin: number): number {
  const h = 2 * s;
  let best = Infinity;
  const a = dx * dx + dz * dz;
  if (a > 1e-12) {
    const b = rx * dx + rz * dz;
    const c = rx * rx + rz * rz - s * s;
    const disc = b * b - a * c;
    if (disc >= 0) {
      const q = Math.sqrt(disc);
      for (let k = 0; k < 2; k++) {
        const t = (-b + (k === 0 ? -q : q)) / a;
        if (t <= tMin || t >= best) continue;
        const y = oy + t * dy;
        if (y < 0 || y > h) continue;
        best = t;
        N[0] = (rx + t * dx) / s;
        N[1] = 0;
        N[2] = (rz + t * dz) / s;
      }
    }
  }
  if (Math.abs(dy) > 1e-12) {
    for (let k = 0; k < 2; k++) {
      const yc = k === 0 ? h : 0;
      const t = (yc - oy) / dy;
      if (t <= tMin || t >= best) continue;
      const px = rx + t * dx, pz = rz + t * dz;
      if (px * px + pz * pz > s * s) continue;
      best = t;
      N[0] = 0;
      N[1] = k === 0 ? 1 : -1;
      N[2] = 0;
    }
  }
  return best;
}

/** Cone: base radius s at y = 0, apex at y = h = 2s: x^2 + z^2 = k^2 (h - y)^2 with k = 1/2. */
function cone(s: number, rx: number, oy: number, rz: number, dx: number, dy: number, dz: number, tMin: number): number {
  const h = 2 * s, k2 = 0.25;
  const hy = h - oy;
  const A = dx * dx + dz * dz - k2 * dy * dy;
  const B = 2 * (rx * dx + rz * dz + k2 * hy * dy);
  const C = rx * rx + rz * rz - k2 * hy * hy;
  let best = Infinity;
  let t0 = Infinity, t1 = Infinity;
  if (Math.abs(A) > 1e-12) {
    const disc = B * B - 4 * A * C;
    if (disc >= 0) {
      const q = Math.sqrt(disc);
      t0 = (-B - q) / (2 * A);
      t1 = (-B + q) / (2 * A);
    }
  } else if (Math.abs(B) > 1e-12) {
    t0 = -C / B;
  }
  for (let k = 0; k < 2; k++) {
    const t = k === 0 ? t0 : t1;
    if (!(t > tMin) || t >= best) continue;
    const y = oy + t * dy;
    if (y < 0 || y > h) continue;
    best = t;
    const X = rx + t * dx, Z = rz + t * dz;
    const ny = k2 * (h - y);
    const len = Math.sqrt(X * X + ny * ny + Z * Z) || 1;
    N[0] = X / len;
    N[1] = ny / len;
    N[2] = Z / len;
  }
  if (Math.abs(dy) > 1e-12) {
    const t = -oy / dy;
    if (t > tMin && t < best) {
      const px = rx + t * dx, pz = rz + t * dz;
      if (px * px + pz * pz <= s * s) {
        best = t;
        N[0] = 0;
        N[1] = -1;
        N[2] = 0;
      }
    }
  }
  return best;
}

function checkSize(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4096) {
    throw new ValrError('ERR_VALR_ARGUMENT', `renderView: ${what} must be an integer in [1, 4096], got ${String(v)}`);
  }
  return v;
}

/** Renders camera `cameraIndex` of the scene. */
export function renderView(scene: Scene, cameraIndex: number, options: RenderOptions = {}): RenderedView {
  return cast(scene, cameraIndex, options, false);
}

/** Only the objectId map of a view ([H, W]; the same values renderView gives), at a fraction of the cost. */
export function renderObjectIds(scene: Scene, cameraIndex: number, options: Pick<RenderOptions, 'width' | 'height'> = {}): Int32Array {
  return cast(scene, cameraIndex, options, true).objectId;
}

/**
 * Conservative pixel bounding boxes of the objects' axis-aligned boxes, [u0, u1, v0, v1] per
 * object in pixel-centre coordinates; the whole image when a corner is behind the camera.
 */
function screenBoxes(scene: Scene, cam: Camera, K: CameraIntrinsics): Float64Array {
  const m = cam.worldToCamera;
  const out = new Float64Array(4 * scene.objects.length);
  scene.objects.forEach((o, i) => {
    const r = footprintRadius(o) * 1.001 + 1e-6;
    let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity, behind = false;
    for (let c = 0; c < 8; c++) {
      const x = o.position[0] + (c & 1 ? r : -r), y = c & 2 ? 2 * o.scale * 1.001 + 1e-6 : -1e-6, z = o.position[2] + (c & 4 ? r : -r);
      const xc = m[0] * x + m[1] * y + m[2] * z + m[3];
      const yc = m[4] * x + m[5] * y + m[6] * z + m[7];
      const zc = m[8] * x + m[9] * y + m[10] * z + m[11];
      if (zc <= 1e-6) {
        behind = true;
        break;
      }
      const u = (K.fx * xc) / zc + K.cx, v = (K.fy * yc) / zc + K.cy;
      u0 = Math.min(u0, u);
      u1 = Math.max(u1, u);
      v0 = Math.min(v0, v);
      v1 = Math.max(v1, v);
    }
    if (behind) {
      u0 = v0 = -Infinity;
      u1 = v1 = Infinity;
    }
    // one pixel of margin: the culling only skips work, it never changes a result
    out.set([u0 - 1, u1 + 1, v0 - 1, v1 + 1], 4 * i);
  });
  return out;
}

function cast(scene: Scene, cameraIndex: number, options: RenderOptions, idOnly: boolean): RenderedView {
  const fn = idOnly ? 'renderObjectIds' : 'renderView';
  if (!scene || typeof scene !== 'object' || !Array.isArray(scene.cameras) || !Array.isArray(scene.objects)) {
    throw new ValrError('ERR_VALR_ARGUMENT', `${fn}: scene must be a Scene (objects and cameras)`);
  }
  if (!Number.isInteger(cameraIndex) || cameraIndex < 0 || cameraIndex >= scene.cameras.length) {
    throw new ValrError('ERR_VALR_RANGE', `${fn}: camera index ${cameraIndex} is out of range [0, ${scene.cameras.length})`);
  }
  if (options === null || typeof options !== 'object') throw new ValrError('ERR_VALR_ARGUMENT', `${fn}: options must be an object`);
  const cam: Camera = scene.cameras[cameraIndex];
  const W = checkSize(options.width ?? cam.intrinsics.width, 'width');
  const H = checkSize(options.height ?? cam.intrinsics.height, 'height');
  const K: CameraIntrinsics = W === cam.intrinsics.width && H === cam.intrinsics.height ? cam.intrinsics : cameraIntrinsics(cam.fovYDeg, W, H);
  const shadows = options.shadows ?? true;
  const m = cam.worldToCamera;
  const [ox, oy, oz] = cam.position;
  const prims: Prim[] = scene.objects.map((o) => ({
    code: SHAPE_CODE[o.shape],
    x: o.position[0],
    z: o.position[2],
    s: o.scale,
    cos: Math.cos(o.rotationY),
    sin: Math.sin(o.rotationY),
    r2: (o.shape === 'cube' ? 3 : 2) * o.scale * o.scale * 1.0001,
  }));
  const boxes = screenBoxes(scene, cam, K);
  const albedo = scene.objects.map((o) => COLOUR_RGB[o.colour]);
  const { floor, light } = scene;
  const [lx, ly, lz] = light.direction;

  const HW = H * W;
  const objectId = new Int32Array(HW);
  const rgb = new Float32Array(idOnly ? 0 : 3 * HW);
  const depth = new Float32Array(idOnly ? 0 : HW);
  const xyz = new Float32Array(idOnly ? 0 : 3 * HW);

  for (let v = 0; v < H; v++) {
    const pv = v + 0.5;
    for (let u = 0; u < W; u++) {
      const p = v * W + u;
      const pu = u + 0.5;
      // camera-frame direction, then world: d = R^T d_cam (R's rows are right, down, forward)
      const cx = (pu - K.cx) / K.fx, cy = (pv - K.cy) / K.fy;
      let dx = m[0] * cx + m[4] * cy + m[8];
      let dy = m[1] * cx + m[5] * cy + m[9];
      let dz = m[2] * cx + m[6] * cy + m[10];
      const len = Math.sqrt(dx * dx + dy * dy + dz * dz);
      dx /= len;
      dy /= len;
      dz /= len;

      let best = Infinity, hitId = BACKGROUND_ID, nx = 0, ny = 0, nz = 0;
      for (let i = 0; i < prims.length; i++) {
        const b = 4 * i;
        if (pu < boxes[b] || pu > boxes[b + 1] || pv < boxes[b + 2] || pv > boxes[b + 3]) continue;
        const t = intersect(prims[i], ox, oy, oz, dx, dy, dz, EPS);
        if (t < best) {
          best = t;
          hitId = i;
          nx = N[0];
          ny = N[1];
          nz = N[2];
        }
      }
      if (dy < -1e-12) {
        const t = -oy / dy;
        if (t > EPS && t < best) {
          const fx = ox + t * dx, fz = oz + t * dz;
          if (Math.abs(fx) <= floor.halfSize && Math.abs(fz) <= floor.halfSize) {
            best = t;
            hitId = FLOOR_ID;
            nx = 0;
            ny = 1;
            nz = 0;
          }
        }
      }
      objectId[p] = hitId;
      if (idOnly) continue;

      if (hitId === BACKGROUND_ID) {
        depth[p] = BACKGROUND_DEPTH;
        // dark, slightly brighter towards the top
        const g = 0.1 + 0.08 * Math.max(0, dy);
        rgb[p] = g;
        rgb[HW + p] = g;
        rgb[2 * HW + p] = g + 0.03;
        continue;
      }
      const hx = ox + best * dx, hy = oy + best * dy, hz = oz + best * dz;
      let base: readonly number[];
      if (hitId === FLOOR_ID) {
        const tile = (Math.floor(hx / floor.tile) + Math.floor(hz / floor.tile)) & 1;
        base = floor.colours[tile];
      } else {
        base = albedo[hitId];
      }
      let lambert = Math.max(0, nx * lx + ny * ly + nz * lz);
      if (shadows && lambert > 0) {
        const sx = hx + nx * 1e-4, sy = hy + ny * 1e-4, sz = hz + nz * 1e-4;
        for (let i = 0; i < prims.length; i++) {
          if (i === hitId) continue; // convex primitives cannot shadow themselves where n.l > 0
          if (intersect(prims[i], sx, sy, sz, lx, ly, lz, EPS) < Infinity) {
            lambert = 0;
            break;
          }
        }
      }
      const shade = light.ambient + light.diffuse * lambert;
      rgb[p] = Math.min(1, base[0] * shade);
      rgb[HW + p] = Math.min(1, base[1] * shade);
      rgb[2 * HW + p] = Math.min(1, base[2] * shade);
      depth[p] = best;
      xyz[p] = hx;
      xyz[HW + p] = hy;
      xyz[2 * HW + p] = hz;
    }
  }
  return { rgb, depth, objectId, xyz, width: W, height: H };
}

/** Renders every camera of the scene. */
export function renderScene(scene: Scene, options: RenderOptions = {}): RenderedView[] {
  return scene.cameras.map((_, i) => renderView(scene, i, options));
}

/** Number of pixels of each object (index 0..numObjects-1) in a render. */
export function objectPixelCounts(view: Pick<RenderedView, 'objectId'>, numObjects: number): number[] {
  const counts = new Array<number>(numObjects).fill(0);
  for (const id of view.objectId) if (id >= 0 && id < numObjects) counts[id]++;
  return counts;
}
