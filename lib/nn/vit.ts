// A ViT vision tower: patch embedding (a linear map of flattened patches), learned
// position embeddings, pre-norm blocks with bidirectional attention and a GELU MLP,
// and a final LayerNorm. Images arrive as host Float32Array [N, C, H, W].
import * as F from '../autograd/model-ops';
import { fail } from '../errors';
import { Tensor, type Device } from '../tensor';
import { Variable } from '../autograd/function';
import { Embedding, LayerNorm, Linear, type InitOptions } from './layers';
import { Initializer, Module } from './module';

export interface VisionConfig {
  imageSize: number; // square images
  patchSize: number;
  channels: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  layerNormEps: number;
}

export function patchGrid(c: VisionConfig): number {
  return Math.floor(c.imageSize / c.patchSize);
}

/** [N, C, H, W] images -> [N, P, C*p*p] patch rows, channel-major inside a patch. */
export function patchify(images: Float32Array, n: number, c: VisionConfig): Float32Array {
  const { imageSize: S, patchSize: p, channels: C } = c;
  if (images.length !== n * C * S * S) fail('ERR_VALR_SHAPE', `images must be [${n}, ${C}, ${S}, ${S}] (${n * C * S * S} values), got ${images.length}`);
  const g = patchGrid(c), P = g * g, row = C * p * p;
  const out = new Float32Array(n * P * row);
  for (let i = 0; i < n; i++)
    for (let gy = 0; gy < g; gy++)
      for (let gx = 0; gx < g; gx++) {
        const o = (i * P + gy * g + gx) * row;
        for (let ch = 0; ch < C; ch++)
          for (let y = 0; y < p; y++)
            for (let x = 0; x < p; x++) out[o + (ch * p + y) * p + x] = images[((i * C + ch) * S + gy * p + y) * S + gx * p + x];
      }
  return out;
}

class VisionBlock extends Module {
  norm1: LayerNorm;
  qkv: Linear;
  proj: Linear;
  norm2: LayerNorm;
  fc1: Linear;
  fc2: Linear;
  constructor(readonly c: VisionConfig, o: InitOptions) {
    super();
    this.norm1 = new LayerNorm(c.hiddenSize, c.layerNormEps, o);
    this.qkv = new Linear(c.hiddenSize, 3 * c.hiddenSize, true, o);
    this.proj = new Linear(c.hiddenSize, c.hiddenSize, true, o);
    this.norm2 = new LayerNorm(c.hiddenSize, c.layerNormEps, o);
    this.fc1 = new Linear(c.hiddenSize, c.intermediateSize, true, o);
    this.fc2 = new Linear(c.intermediateSize, c.hiddenSize, true, o);
  }
  forward(x: Variable): Variable {
    const [N, P, D] = x.value.shape;
    const H = this.c.numHeads, dh = D / H;
    const qkv = F.reshape(this.qkv.forward(this.norm1.forward(x)), [N, P, 3 * D]);
    // q, k, v are consecutive D-blocks of each row: split through a [N*P, 3, D] view.
    const rows = F.reshape(qkv, [N * P, 3, D]);
    const part = (i: number) => F.reshape(F.sliceSeq(rows, i, 1), [N, P, H, dh]);
    const a = F.attention(part(0), part(1), part(2), { causal: false });
    const h = F.add(x, this.proj.forward(F.reshape(a, [N, P, D])));
    return F.add(h, this.fc2.forward(F.gelu(this.fc1.forward(this.norm2.forward(h)))));
  }
}

export class VisionTower extends Module {
  patch_embed: Linear;
  pos_embed: Embedding;
  blocks: VisionBlock[];
  post_norm: LayerNorm;
  constructor(readonly config: VisionConfig, options: { seed?: number; device?: Device } = {}) {
    super();
    const o: InitOptions = { init: new Initializer(options.seed ?? 1), device: options.device ?? 'cpu' };
    const c = config;
    if (c.hiddenSize % c.numHeads) fail('ERR_VALR_ARGUMENT', `vision hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`);
    this.patch_embed = new Linear(c.channels * c.patchSize * c.patchSize, c.hiddenSize, true, o);
    this.pos_embed = new Embedding(patchGrid(c) ** 2, c.hiddenSize, o);
    this.blocks = Array.from({ length: c.numLayers }, () => new VisionBlock(c, o));
    this.post_norm = new LayerNorm(c.hiddenSize, c.layerNormEps, o);
  }

  get device(): Device {
    return this.patch_embed.weight.value.device;
  }

  /** images [N, C, H, W] -> patch features [N, P, D] */
  forward(images: Float32Array, n: number): Variable {
    const c = this.config, P = patchGrid(c) ** 2;
    const patches = new Variable(Tensor.fromArray(patchify(images, n, c), [n, P, c.channels * c.patchSize ** 2], { device: this.device }));
    const ids = Int32Array.from({ length: n * P }, (_, i) => i % P);
    let x = F.add(this.patch_embed.forward(patches), this.pos_embed.forward(ids, [n, P]));
    for (const b of this.blocks) x = b.forward(x);
    return this.post_norm.forward(x);
  }
}
