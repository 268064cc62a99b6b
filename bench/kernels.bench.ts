// CPU benchmark of the VaLR alignment kernels at paper-like sizes.
//
//   npx tsx bench/kernels.bench.ts [--quick]
//
// For each kernel: median time per call (forward, backward, forward+backward),
// achieved GB/s from the minimum bytes the kernel must move, that rate as a
// fraction of a multithreaded memcpy measured in the same run, and the speed-up
// over PyTorch CPU eager doing the same work (bench/torch_alignment_reference.py,
// spawned with the same sizes and thread count) when python3 can import torch.
// Results also go to bench/results/kernels-cpu-<hostname>.json.
//
// GB/s everywhere means 1e9 bytes per second.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// The subset of '../lib/index' this bench uses. Declared here rather than
// imported so that a missing build gives a clear message instead of a crash.
type Shape = number[];
interface KernelApi {
  upsampleBilinear(x: Float32Array, shape: Shape, out: Shape): Float32Array;
  upsampleBilinearBackward(dy: Float32Array, shape: Shape, out: Shape): Float32Array;
  tapGather(hidden: Float32Array, shape: Shape, rows: Int32Array): Float32Array;
  tapScatter(grad: Float32Array, shape: Shape, rows: Int32Array, out: Shape): Float32Array;
  repaCosineLoss(
    pred: Float32Array,
    target: Float32Array,
    shape: Shape,
    weights?: Float32Array,
  ): { loss: number; gradPred: Float32Array };
}
interface RuntimeApi {
  copyBandwidth(bytes: number, iterations: number): number;
  numThreads(): number;
}

const ROOT = path.resolve(__dirname, '..');

function usage(code: number): never {
  console.log('usage: npx tsx bench/kernels.bench.ts [--quick]');
  process.exit(code);
}

const argv = process.argv.slice(2);
for (const a of argv) {
  if (a === '-h' || a === '--help') usage(0);
  if (a !== '--quick') {
    console.error(`unknown argument: ${a} (only --quick is supported; this bench is CPU only)`);
    usage(2);
  }
}
const QUICK = argv.includes('--quick');

// Run policy, mirrored in torch_alignment_reference.py: warm up, then time single
// calls until both a minimum count and a per-measurement time budget are met.
const POLICY = QUICK
  ? { warmup: 1, minRuns: 3, maxRuns: 20, budgetS: 0.3 }
  : { warmup: 2, minRuns: 5, maxRuns: 50, budgetS: 1.5 };

// Paper-like sizes: 64 latent segments of K = 16 slots (4x4 grid), teacher grid
// 16x16 (P = 256), hidden 1024; teacher dims 768 (DINO/SigLIP-like) and 1152.
const S = 64;
const GH = 4;
const GW = 4;
const PH = 16;
const PW = 16;
const D = 1024;
const LOSS_DIMS = [768, 1152];
const B = 8;
const T = 512;
const K = GH * GW;
const P = PH * PW;

function loadLib(): { kernels: KernelApi; runtime: RuntimeApi } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const lib = require(path.join(ROOT, 'lib', 'index')) as { kernels?: KernelApi; runtime?: RuntimeApi };
    if (!lib.kernels || !lib.runtime) throw new Error("lib/index exports no 'kernels' or 'runtime'");
    lib.runtime.numThreads(); // the binary may load lazily: fail here, not mid-run
    return { kernels: lib.kernels, runtime: lib.runtime };
  } catch (e) {
    console.error('valr-node could not be loaded: ' + (e instanceof Error ? e.message : String(e)));
    console.error('Run `npm install` in the package root (it builds the native addon), then retry.');
    process.exit(1);
  }
}

// Deterministic uniform(-1, 1) data: never time on zeros (denormal-free, and
// the loss must see real norms).
function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = (s >>> 0) / 2147483648 - 1;
  }
  return a;
}

function distinctRows(count: number, numRows: number, seed: number): Int32Array {
  const perm = new Int32Array(numRows);
  for (let i = 0; i < numRows; i++) perm[i] = i;
  let s = seed >>> 0 || 1;
  for (let i = numRows - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, count);
}

// Median seconds per call. The result is kept alive in `sink` so nothing can be
// skipped as dead code.
let sink = 0;
function medianSeconds(fn: () => Float32Array | { loss: number }): number {
  const touch = (r: Float32Array | { loss: number }) => {
    sink += r instanceof Float32Array ? r[0] : r.loss;
  };
  for (let i = 0; i < POLICY.warmup; i++) touch(fn());
  const times: number[] = [];
  const deadline = process.hrtime.bigint() + BigInt(Math.round(POLICY.budgetS * 1e9));
  while (times.length < POLICY.maxRuns && (times.length < POLICY.minRuns || process.hrtime.bigint() < deadline)) {
    const t0 = process.hrtime.bigint();
    const r = fn();
    const t1 = process.hrtime.bigint();
    touch(r);
    times.push(Number(t1 - t0) / 1e9);
  }
  times.sort((x, y) => x - y);
  const m = times.length >> 1;
  return times.length % 2 ? times[m] : (times[m - 1] + times[m]) / 2;
}

interface TorchResult {
  torch_version: string;
  threads: number;
  median_s: Record<string, number>;
}

function runTorch(threads: number): TorchResult | string {
  const probe = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error || probe.status !== 0) return 'python3 with torch not importable; PyTorch comparison skipped';
  const args = [
    path.join(__dirname, 'torch_alignment_reference.py'),
    '--S', String(S),
    '--grid', `${GH}x${GW}`,
    '--patch', `${PH}x${PW}`,
    '--D', String(D),
    '--loss-D', LOSS_DIMS.join(','),
    '--B', String(B),
    '--T', String(T),
    '--threads', String(threads),
  ];
  if (QUICK) args.push('--quick');
  const r = spawnSync('python3', args, {
    encoding: 'utf8',
    timeout: QUICK ? 60_000 : 120_000,
    maxBuffer: 1 << 20,
    // One BLAS/OpenMP pool sized like ours; torch.set_num_threads does the rest.
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
    return `PyTorch reference failed (${why}); comparison skipped`;
  }
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]) as TorchResult;
  } catch {
    return 'PyTorch reference printed no JSON; comparison skipped';
  }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

interface Row {
  kernel: string;
  phase: 'fwd' | 'bwd' | 'fwd+bwd';
  size: string;
  bytes: number;
  seconds: number;
  torchKey?: string; // key in the torch JSON for the same work
  target?: { minVsTorch?: number; minCopyFraction?: number };
}

function main(): void {
  const { kernels, runtime } = loadLib();
  const threads = runtime.numThreads();

  // Copy bandwidth: a buffer well past the last-level cache, best of two tries
  // so one noisy sample does not inflate every percentage.
  const copyBytes = (QUICK ? 64 : 256) * 1024 * 1024;
  const copyIters = QUICK ? 4 : 10;
  const copyGBs = Math.max(runtime.copyBandwidth(copyBytes, copyIters), runtime.copyBandwidth(copyBytes, copyIters));

  // Every kernel returns a new JS-owned array; on some hosts (VMs especially)
  // faulting in fresh pages costs about as much as the kernel, so report it.
  const touchBytes = S * P * D * 4;
  const firstTouchGBs = touchBytes / medianSeconds(() => new Float32Array(touchBytes / 4).fill(1)) / 1e9;

  const rows: Row[] = [];
  const F = 4; // bytes per float32

  // --- upsample: x [S,gh,gw,D] <-> y [S,Gh,Gw,D]
  {
    const xShape = [S, GH, GW, D];
    const outHW = [PH, PW];
    const x = randomF32(S * K * D, 1);
    const dy = randomF32(S * P * D, 2);
    const size = `S=${S} ${GH}x${GW}->${PH}x${PW} D=${D}`;
    // Outputs are reused across calls, as in a training loop (a fresh array per call
    // mostly measures page faults); the 'fwd (new array)' row shows that cost.
    const yOut = new Float32Array(S * P * D), dxOut = new Float32Array(S * K * D);
    // Minimum traffic: fwd reads x once and writes y once; bwd reads dy, writes dx.
    const small = S * K * D * F;
    const big = S * P * D * F;
    rows.push({ kernel: 'upsample_bilinear', phase: 'fwd', size, bytes: small + big, torchKey: 'upsample_fwd',
      seconds: medianSeconds(() => kernels.upsampleBilinear(x, xShape, outHW, yOut)) });
    rows.push({ kernel: 'upsample_bilinear', phase: 'fwd (new array)', size, bytes: small + big, torchKey: 'upsample_fwd',
      seconds: medianSeconds(() => kernels.upsampleBilinear(x, xShape, outHW)) });
    rows.push({ kernel: 'upsample_bilinear', phase: 'bwd', size, bytes: big + small, torchKey: 'upsample_bwd',
      seconds: medianSeconds(() => kernels.upsampleBilinearBackward(dy, xShape, outHW, dxOut)) });
    rows.push({ kernel: 'upsample_bilinear', phase: 'fwd+bwd', size, bytes: 2 * (small + big), torchKey: 'upsample_fwdbwd',
      target: { minVsTorch: 5 },
      seconds: medianSeconds(() => {
        kernels.upsampleBilinear(x, xShape, outHW, yOut);
        return kernels.upsampleBilinearBackward(dy, xShape, outHW, dxOut);
      }) });
  }

  // --- tap: gather S*K distinct rows of hidden [B,T,D]; scatter back into [B,T,D]
  {
    const count = S * K;
    const hidden = randomF32(B * T * D, 3);
    const g = randomF32(count * D, 4);
    const idx = distinctRows(count, B * T, 5);
    const size = `B=${B} T=${T} rows=${count} D=${D}`;
    // gather: read the selected rows + indices, write count*D.
    // scatter: read grad + indices, write the whole [B,T,D] output (it is (=), zeros included).
    const gatherBytes = 2 * count * D * F + count * 4;
    const scatterBytes = count * D * F + count * 4 + B * T * D * F;
    const gathered = new Float32Array(count * D), scattered = new Float32Array(B * T * D);
    rows.push({ kernel: 'tap', phase: 'fwd', size, bytes: gatherBytes, torchKey: 'tap_fwd',
      seconds: medianSeconds(() => kernels.tapGather(hidden, [B, T, D], idx, gathered)) });
    rows.push({ kernel: 'tap', phase: 'bwd', size, bytes: scatterBytes, torchKey: 'tap_bwd',
      seconds: medianSeconds(() => kernels.tapScatter(g, [S, K, D], idx, [B, T, D], scattered)) });
    rows.push({ kernel: 'tap', phase: 'fwd+bwd', size, bytes: gatherBytes + scatterBytes, torchKey: 'tap_fwdbwd',
      seconds: medianSeconds(() => {
        kernels.tapGather(hidden, [B, T, D], idx, gathered);
        return kernels.tapScatter(g, [S, K, D], idx, [B, T, D], scattered);
      }) });
  }

  // --- REPA cosine loss: one call gives loss and gradPred, so only fwd+bwd exists.
  for (const Dm of LOSS_DIMS) {
    const pred = randomF32(S * P * Dm, 10 + Dm);
    const target = randomF32(S * P * Dm, 20 + Dm);
    const grad = new Float32Array(S * P * Dm);
    // Minimum traffic: read pred and target once, write gradPred once.
    rows.push({ kernel: `repa_cosine_d${Dm}`, phase: 'fwd+bwd', size: `S=${S} P=${P} D=${Dm}`,
      bytes: 3 * S * P * Dm * F, torchKey: `repa_d${Dm}_fwdbwd`,
      target: { minVsTorch: 10, minCopyFraction: 0.5 },
      seconds: medianSeconds(() => kernels.repaCosineLoss(pred, target, [S, P, Dm], null, grad)) });
  }

  const torch = runTorch(threads);
  const torchNote = typeof torch === 'string' ? torch : null;
  const torchTimes = typeof torch === 'string' ? null : torch.median_s;

  console.log(
    `valr kernels (CPU) | threads ${threads} | copy bandwidth ${copyGBs.toFixed(1)} GB/s` +
      ` | fill of a fresh ${touchBytes >> 20} MiB array ${firstTouchGBs.toFixed(1)} GB/s` +
      (torchNote ? '' : ` | PyTorch ${(torch as TorchResult).torch_version}, ${(torch as TorchResult).threads} threads`) +
      (QUICK ? ' | --quick' : ''),
  );
  if (torchNote) console.log(torchNote);

  const results = rows.map((r) => {
    const gbs = r.bytes / r.seconds / 1e9;
    const frac = gbs / copyGBs;
    const tt = torchTimes && r.torchKey ? torchTimes[r.torchKey] : undefined;
    const vsTorch = tt !== undefined ? tt / r.seconds : undefined;
    const checks: string[] = [];
    const pass: Record<string, boolean | null> = {};
    if (r.target?.minVsTorch !== undefined) {
      const ok = vsTorch === undefined ? null : vsTorch >= r.target.minVsTorch;
      pass.vsTorch = ok;
      checks.push(`>=${r.target.minVsTorch}x torch ${ok === null ? 'n/a' : ok ? 'PASS' : 'MISS'}`);
    }
    if (r.target?.minCopyFraction !== undefined) {
      const ok = frac >= r.target.minCopyFraction;
      pass.copyFraction = ok;
      checks.push(`>=${(r.target.minCopyFraction * 100).toFixed(0)}% copy ${ok ? 'PASS' : 'MISS'}`);
    }
    const line =
      `${(r.kernel + ' ' + r.phase).padEnd(28)} | ${r.size.padEnd(28)} | ` +
      `${(r.seconds * 1e3).toFixed(3).padStart(9)} ms | ${gbs.toFixed(1).padStart(6)} GB/s | ` +
      `${(frac * 100).toFixed(0).padStart(3)}% copy | ` +
      `${vsTorch === undefined ? '   n/a' : (vsTorch.toFixed(2) + 'x').padStart(6)} vs torch` +
      (checks.length ? ` | target ${checks.join(', ')}` : '');
    console.log(line);
    return {
      kernel: r.kernel,
      phase: r.phase,
      size: r.size,
      ms: r.seconds * 1e3,
      bytes: r.bytes,
      gbPerS: gbs,
      copyFraction: frac,
      torchMs: tt !== undefined ? tt * 1e3 : null,
      vsTorch: vsTorch ?? null,
      target: r.target ?? null,
      pass: r.target ? pass : null,
    };
  });

  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'unknown';
  const outDir = path.join(__dirname, 'results');
  const outFile = path.join(outDir, `kernels-cpu-${host}.json`);
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    threads,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    commit: gitCommit(),
    quick: QUICK,
    policy: POLICY,
    sizes: { S, grid: [GH, GW], patch: [PH, PW], D, lossDims: LOSS_DIMS, B, T },
    copyBandwidthGBs: copyGBs,
    freshArrayFillGBs: firstTouchGBs,
    torch: torchNote
      ? { skipped: torchNote }
      : { version: (torch as TorchResult).torch_version, threads: (torch as TorchResult).threads, medianSeconds: torchTimes },
    results,
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${path.relative(ROOT, outFile)}${Number.isNaN(sink) ? ' (NaN seen in outputs)' : ''}`);
}

main();
