// Latent reasoning benchmark (issue 5):
//  - one latent step (inside a fused segment) against one normal decode step (token in,
//    logits out) at the same batch and cache length; target: latent <= decode, since it
//    skips the LM head and sampling;
//  - a K = 16 fused segment against the same 16 feedback steps through the TypeScript
//    graph path (one op at a time, the way a Coconut-style loop runs).
//   npx tsx bench/latent.bench.ts [--quick] [--preset tiny|small] [--device cpu|cuda]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const presetName = opt('--preset', 'tiny') as 'tiny' | 'small';
const device = opt('--device', 'cpu') as 'cpu' | 'cuda';

const valr = require('../lib/index') as typeof import('../lib/index');
const { DecoderSession } = require('../lib/latent/decoder-session') as typeof import('../lib/latent/decoder-session');
const { autograd, nn, scope, Tensor, runtime } = valr;
const K = 16, VOCAB = 4096, CACHE = QUICK ? 128 : 512;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function time(fn: () => void, budget = QUICK ? 0.3 : 1.5): number {
  fn();
  const times: number[] = [];
  const t0 = process.hrtime.bigint();
  while (times.length < 3 || (Number(process.hrtime.bigint() - t0) / 1e9 < budget && times.length < 30)) {
    const s = process.hrtime.bigint();
    fn();
    if (device === 'cuda') runtime.cudaSynchronize();
    times.push(Number(process.hrtime.bigint() - s) / 1e9);
  }
  return median(times);
}

const preset = nn.presets[presetName];
const model = new nn.Qwen2ForCausalLM({ ...preset.decoder, vocabSize: VOCAB }, { seed: 1, device });
const D = preset.decoder.hiddenSize, tapLayer = Math.max(1, Math.floor((preset.decoder.numLayers * 12) / 28));
const rows: Record<string, unknown>[] = [];
let graphOnly = 0; // seconds of the 16 graph steps alone (the prefix fill is not counted)
console.log(`valr latent (${device}) | preset ${presetName} (hidden ${D}, ${preset.decoder.numLayers} layers, vocab ${VOCAB}) | cache ${CACHE} | threads ${runtime.numThreads()}${QUICK ? ' | --quick' : ''}`);

for (const B of QUICK ? [1, 8] : [1, 8, 64]) {
  // A session with CACHE - K - 1 positions already filled, rewound before every timing.
  const session = new DecoderSession(model, B, CACHE);
  const prefix = CACHE - K - 2;
  scope(() => session.forward(Tensor.fromArray(new Float32Array(B * prefix * D).map((_, i) => Math.sin(i)), [B, prefix, D], { device })));
  const rewind = () => {
    session.length = prefix;
    session.nextPosition.fill(prefix);
    session.keyMask.fill(0);
    for (let b = 0; b < B; b++) session.keyMask.fill(1, b * CACHE, b * CACHE + prefix);
  };
  const ids = Int32Array.from({ length: B }, (_, i) => (i * 7) % VOCAB);
  const h0 = Tensor.fromArray(new Float32Array(B * D).map((_, i) => Math.cos(i)), [B, D], { device });
  const decode = time(() => { rewind(); scope(() => session.forward(session.embed(ids, 1), { logits: true })); });
  const segment = time(() => { rewind(); scope(() => session.latent(h0, K, tapLayer)); });
  const perLatent = segment / K;
  // The graph path: 16 feedback steps through the TypeScript ops with a chunk-list cache.
  time(() => autograd.noGrad(() => scope(() => {
    const cache = new nn.KVCache(preset.decoder.numLayers);
    model.model.forward({ embeds: new autograd.Variable(Tensor.fromArray(new Float32Array(B * prefix * D), [B, prefix, D], { device })), shape: [B, prefix], cache });
    const t0 = process.hrtime.bigint();
    let h = new autograd.Variable(h0.reshape([B, 1, D]));
    for (let j = 0; j < K; j++) h = model.model.forward({ embeds: h, shape: [B, 1], cache, outputHiddenStates: true }).hidden;
    graphOnly = Number(process.hrtime.bigint() - t0) / 1e9;
    cache.dispose();
  })), QUICK ? 0.3 : 1);
  const r = {
    batch: B, cache: CACHE, decodeStepMs: decode * 1e3, latentStepMs: perLatent * 1e3, latentOverDecode: perLatent / decode,
    fusedSegmentMs: segment * 1e3, graphSegmentMs: graphOnly * 1e3, graphOverFused: graphOnly / segment,
  };
  rows.push(r);
  console.log(
    `B=${String(B).padStart(3)} | decode step ${(decode * 1e3).toFixed(3)} ms | latent step ${(perLatent * 1e3).toFixed(3)} ms ` +
      `(${(perLatent / decode).toFixed(2)}x of decode; target <= 1: ${perLatent <= decode ? 'PASS' : 'MISS'}) | ` +
      `K=16 fused ${(segment * 1e3).toFixed(2)} ms vs graph ${(graphOnly * 1e3).toFixed(2)} ms (${(graphOnly / segment).toFixed(2)}x faster)`,
  );
  h0.dispose();
  session.dispose();
}

const commit = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
const out = path.join(__dirname, 'results', `latent-${device}-${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, device, preset: presetName, threads: runtime.numThreads(), cpu: os.cpus()[0]?.model, commit, quick: QUICK, rows }, null, 2));
console.log(`wrote ${path.relative(process.cwd(), out)}`);
