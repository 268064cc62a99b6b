// Matrix-multiply benchmark: GFLOP/s of valr's GEMM against PyTorch's matmul at the
// same shapes, same thread count, same run (bench/torch_matmul_reference.py).
//   npx tsx bench/ops.bench.ts [--quick] [--device cuda]
// Target (issue 4): CPU >= 50% of PyTorch at 512/1024/2048; GPU >= 70%.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const deviceArg = args.includes('--device') ? args[args.indexOf('--device') + 1] : 'cpu';
if (deviceArg !== 'cpu' && deviceArg !== 'cuda') {
  console.error('usage: npx tsx bench/ops.bench.ts [--quick] [--device cpu|cuda]');
  process.exit(2);
}

let valr: typeof import('../lib/index');
try {
  valr = require('../lib/index');
  valr.runtime.numThreads();
} catch (e) {
  console.error(`cannot load valr-node (${(e as Error).message}); run npm install first`);
  process.exit(1);
}
const { Tensor, modelOps, runtime } = valr;
const device = deviceArg as 'cpu' | 'cuda';

type Shape = [number, number, number, 'NN' | 'TN' | 'NT'];
const SHAPES: Shape[] = QUICK
  ? [[512, 512, 512, 'NN'], [1024, 1024, 1024, 'NN'], [256, 4096, 1024, 'NT']]
  : [
      [512, 512, 512, 'NN'], [1024, 1024, 1024, 'NN'], [2048, 2048, 2048, 'NN'],
      [256, 4096, 1024, 'NN'], [256, 4096, 1024, 'TN'], [256, 4096, 1024, 'NT'],
      [4096, 1024, 1024, 'NN'], [4096, 1024, 1024, 'TN'], [4096, 1024, 1024, 'NT'],
    ];

function randn(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeValr([M, N, K, op]: Shape): number {
  const ta = op[0] === 'T', tb = op[1] === 'T';
  const a = Tensor.fromArray(randn(M * K, 1), ta ? [K, M] : [M, K], { device });
  const b = Tensor.fromArray(randn(K * N, 2), tb ? [N, K] : [K, N], { device });
  const c = Tensor.empty([M, N], { device });
  const run = () => {
    modelOps.matmul(a, b, { transA: ta, transB: tb, out: c });
    if (device === 'cuda') runtime.cudaSynchronize();
  };
  run();
  run();
  const times: number[] = [];
  const budget = QUICK ? 0.3 : 1.5;
  const t0 = process.hrtime.bigint();
  while (times.length < 3 || (Number(process.hrtime.bigint() - t0) / 1e9 < budget && times.length < 50)) {
    const s = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - s) / 1e9);
  }
  for (const t of [a, b, c]) t.dispose();
  return median(times);
}

function timeTorch(threads: number): Record<string, number> | string {
  const script = path.join(__dirname, 'torch_matmul_reference.py');
  const cudaArgs = device === 'cuda' ? ['--device', 'cuda'] : [];
  const r = spawnSync('python3', [script, '--threads', String(threads), '--shapes', JSON.stringify(SHAPES), ...(QUICK ? ['--quick'] : []), ...cudaArgs], {
    encoding: 'utf8',
  });
  if (r.status !== 0) return `PyTorch reference not run: ${(r.stderr || r.error?.message || 'python3 failed').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!).median_s;
}

const threads = runtime.numThreads();
const ours = SHAPES.map((s) => timeValr(s));
const torch = timeTorch(threads);
console.log(`valr matmul (${device}) | threads ${threads} | ${os.cpus()[0]?.model ?? ''}${QUICK ? ' | --quick' : ''}`);
if (typeof torch === 'string') console.log(torch);
const rows = SHAPES.map((s, i) => {
  const [M, N, K, op] = s;
  const key = `${M}x${N}x${K}_${op}`;
  const gflops = (2 * M * N * K) / ours[i] / 1e9;
  const tt = typeof torch === 'string' ? undefined : torch[key];
  const tg = tt ? (2 * M * N * K) / tt / 1e9 : undefined;
  const ratio = tg ? gflops / tg : undefined;
  const square = M === N && N === K;
  const target = device === 'cuda' ? 0.7 : 0.5;
  console.log(
    `${key.padEnd(22)} ${(ours[i] * 1e3).toFixed(2).padStart(9)} ms ${gflops.toFixed(1).padStart(8)} GFLOP/s` +
      (tg ? ` | torch ${tg.toFixed(1).padStart(8)} GFLOP/s | ${(100 * ratio!).toFixed(0)}% of torch` : '') +
      (square && ratio !== undefined ? ` | target >= ${target * 100}% ${ratio >= target ? 'PASS' : 'MISS'}` : ''),
  );
  return { shape: key, seconds: ours[i], gflops, torchSeconds: tt ?? null, torchGflops: tg ?? null, ratio: ratio ?? null };
});

const commit = (() => {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
})();
const out = path.join(__dirname, 'results', `ops-${device}-${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, threads, device, cpu: os.cpus()[0]?.model, commit, quick: QUICK, rows }, null, 2));
console.log(`wrote ${path.relative(process.cwd(), out)}`);
