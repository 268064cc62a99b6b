// Checkpoints: parameters and optimizer moments in safetensors, and a JSON state
// (config, stage, step, data position, metrics) that names the tensor files of its
// step. Every file is written atomically and the state last, so a kill at any
// moment leaves the previous complete checkpoint: resuming reads whatever state.json
// names, and older tensor files are removed only after the new state is in place.
import * as fs from 'fs';
import * as path from 'path';
import { fail } from '../errors';
import { writeFileAtomic } from '../io/atomic-file';
import { readSafetensorsSync, toFloat32, writeSafetensorsAtomic } from '../io/safetensors';
import type { Variable } from '../autograd/function';
import type { AdamW } from '../optim/adamw';

export interface CheckpointState {
  format: 1;
  stage: number;
  step: number; // optimizer steps done in this stage
  epoch: number;
  batchInEpoch: number; // batches of `epoch` already used
  optimizerStep: number;
  files: { params: string; optimizer: string };
  config: unknown;
  extra?: Record<string, unknown>;
}


export async function saveCheckpoint(
  dir: string,
  params: [string, Variable][],
  optimizer: AdamW | null,
  state: Omit<CheckpointState, 'files' | 'format' | 'optimizerStep'>,
): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  const tag = `s${state.stage}-${String(state.step).padStart(7, '0')}`;
  const files = { params: `params-${tag}.safetensors`, optimizer: `optimizer-${tag}.safetensors` };
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, p] of params) tensors[name] = { shape: [...p.value.shape], data: p.value.toArray() as Float32Array };
  await writeSafetensorsAtomic(path.join(dir, files.params), tensors, { stage: String(state.stage), step: String(state.step) });
  const moments: Record<string, { shape: number[]; data: Float32Array }> = {};
  if (optimizer) {
    const byParam = new Map(params.map(([n, p]) => [p, n]));
    for (const g of optimizer.groups)
      for (const p of g.params) {
        const s = optimizer.state([p])[0];
        const name = byParam.get(p);
        if (!s || !name) continue;
        moments[`m.${name}`] = { shape: [...p.value.shape], data: s.m.toArray() as Float32Array };
        moments[`v.${name}`] = { shape: [...p.value.shape], data: s.v.toArray() as Float32Array };
      }
  }
  await writeSafetensorsAtomic(path.join(dir, files.optimizer), moments, { step: String(optimizer?.step ?? 0) });
  const full: CheckpointState = { format: 1, ...state, optimizerStep: optimizer?.step ?? 0, files };
  await writeFileAtomic(path.join(dir, 'state.json'), JSON.stringify(full, null, 2));
  // Only now are the older tensor files unreferenced.
  for (const f of await fs.promises.readdir(dir)) {
    if ((f.startsWith('params-') || f.startsWith('optimizer-')) && f !== files.params && f !== files.optimizer && !f.includes('.tmp-')) {
      await fs.promises.rm(path.join(dir, f), { force: true });
    }
  }
}

export function readCheckpointState(dir: string): CheckpointState | null {
  const file = path.join(dir, 'state.json');
  if (!fs.existsSync(file)) return null;
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail('ERR_VALR_ARGUMENT', `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (state.format !== 1 || !state.files) fail('ERR_VALR_ARGUMENT', `${file}: not a valr checkpoint state`);
  return state;
}

/** Loads parameters (and optimizer moments) of the checkpoint in `dir` into place. */
export function loadCheckpoint(dir: string, params: [string, Variable][], optimizer: AdamW | null): CheckpointState {
  const state = readCheckpointState(dir);
  if (!state) return fail('ERR_VALR_ARGUMENT', `${dir}: no checkpoint (state.json) to resume from`);
  const st = readSafetensorsSync(path.join(dir, state.files.params));
  for (const [name, p] of params) {
    const rec = st.tensors.get(name);
    if (!rec) fail('ERR_VALR_ARGUMENT', `${dir}: checkpoint has no parameter '${name}'`);
    p.value.write(toFloat32(rec, name));
  }
  if (optimizer) {
    const os = readSafetensorsSync(path.join(dir, state.files.optimizer));
    for (const [name, p] of params) {
      const m = os.tensors.get(`m.${name}`), v = os.tensors.get(`v.${name}`);
      if (m && v) optimizer.setState(p, toFloat32(m, name), toFloat32(v, name));
    }
    optimizer.step = state.optimizerStep;
  }
  return state;
}
