// Parity with Hugging Face transformers on tiny random Qwen2/Llama checkpoints
// (test/fixtures/qwen2/, written by make_qwen2_fixtures.py): logits, hidden states,
// the causal-LM loss, every parameter gradient, and three AdamW steps.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { autograd, scope } from '../lib/index';
import { readSafetensorsSync, toFloat32, toInt32 } from '../lib/io/safetensors';
import { loadModel } from '../lib/nn/load';
import { AdamW } from '../lib/optim/adamw';
import { assertClose, assertScalarClose, maxAbs } from './helpers/check';

const root = path.join(__dirname, 'fixtures', 'qwen2');
const cases = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'config.json')));
const test = suite('Hugging Face parity');

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

test('fixture cases exist', () => assert.ok(cases.length >= 4, cases.join(',')));

for (const name of cases) {
  const dir = path.join(root, name);
  test(`${name}: logits, hidden states, loss, gradients and AdamW steps`, async () => {
    const ref = readSafetensorsSync(path.join(dir, 'reference.safetensors')).tensors;
    const f32 = (k: string) => toFloat32(ref.get(k)!, k);
    const ids = toInt32(ref.get('input_ids')!, 'input_ids');
    const [B, T] = ref.get('input_ids')!.shape as [number, number];
    const mask = toInt32(ref.get('attention_mask')!, 'attention_mask');
    const labels = toInt32(ref.get('labels')!, 'labels');
    const model = await loadModel(dir);
    const V = model.config.vocabSize;

    // Logits: compare only positions HF computes meaningfully (padding rows differ by design).
    const logits = model.logits(ids, [B, T], mask);
    const refLogits = f32('logits');
    const keep = (a: Float32Array) => a.filter((_, i) => mask[Math.floor(i / V)] === 1);
    assert.ok(relErr(keep(logits), keep(refLogits)) < 1e-4, `logits relative error ${relErr(keep(logits), keep(refLogits))}`);

    scope(() => {
      const out = model.model.forward({ ids, shape: [B, T], keyMask: mask, outputHiddenStates: true });
      out.hiddenStates!.forEach((h, i) => {
        const key = `hidden_states.${i}`;
        if (!ref.has(key)) return;
        const e = relErr(keep(h.value.toArray() as Float32Array).slice(0), keep(f32(key)));
        assert.ok(e < 1e-4, `${key} relative error ${e}`);
      });
    });

    scope(() => {
      const { loss } = model.loss(ids, [B, T], labels, mask);
      assertScalarClose((loss.value.toArray() as Float32Array)[0], f32('loss')[0], 1e-5, 1e-5, 'loss');
      autograd.backward(loss);
    });
    for (const [pname, p] of model.namedParameters()) {
      const g = f32(`grad.${pname}`);
      const e = relErr(p.grad!.toArray() as Float32Array, g);
      assert.ok(e < 1e-3, `grad ${pname}: relative error ${e} (max |g| ${maxAbs(g)})`);
    }
    model.zeroGrad();

    const opt = new AdamW([{ params: model.parameters(), lr: 1e-2, weightDecay: 0.01 }], { betas: [0.9, 0.999], eps: 1e-8 });
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      scope(() => {
        const { loss } = model.loss(ids, [B, T], labels, mask);
        losses.push((loss.value.toArray() as Float32Array)[0]);
        autograd.backward(loss);
      });
      opt.update();
      model.zeroGrad();
    }
    assertClose(losses, f32('adamw_losses'), 1e-4, 1e-4, 'AdamW losses');
    for (const [pname, p] of model.namedParameters()) {
      const e = relErr(p.value.toArray() as Float32Array, f32(`params_after_adamw.${pname}`));
      assert.ok(e < 1e-4, `${pname} after AdamW: relative error ${e}`);
    }
    opt.dispose();
    model.dispose();
  });
}

test.run();
