// The `valr` command line in child processes: help for every command, making data,
// clear errors for bad arguments, and Ctrl-C during training saving a checkpoint
// that a rerun with --resume continues from.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'lib', 'cli.ts');
const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: '1' } });
const test = suite('valr CLI');

test('every command has --help; unknown commands and flags are errors', () => {
  const main = run(['--help']);
  assert.is(main.status, 0);
  for (const cmd of ['demo', 'data', 'train', 'eval', 'generate', 'bench', 'doctor']) {
    assert.match(main.stdout, new RegExp(`\\n  ${cmd} `), `${cmd} listed`);
    const r = run([cmd, '--help']);
    assert.is(r.status, 0, `${cmd} --help`);
    assert.match(r.stdout, new RegExp(`Usage: valr ${cmd}`));
  }
  assert.is(run(['fly']).status, 2);
  const bad = run(['doctor', '--frobnicate']);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /frobnicate/);
  const noData = run(['train']);
  assert.is(noData.status, 1);
  assert.match(noData.stderr, /--data DIR is required/);
});

test('data make writes the dataset; Ctrl-C in training saves a checkpoint; --resume finishes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-cli-'));
  try {
    const data = path.join(dir, 'data');
    const made = run(['data', 'make', '--out', data, '--train', '24', '--val', '4', '--test', '6', '--views', '2,3']);
    assert.is(made.status, 0, made.stderr);
    for (const f of ['train.jsonl', 'val.jsonl', 'test.jsonl', 'views.safetensors', 'meta.json']) assert.ok(fs.existsSync(path.join(data, f)), f);
    const out = path.join(dir, 'run');
    const args = ['--import', 'tsx', cli, 'train', '--data', data, '--out', out, '--arm', 'sft', '--epochs1', '200', '--epochs2', '1', '--batch', '8', '--perception-steps', '20'];
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, CI: '1' } });
    let stderr = '';
    child.stderr.on('data', (b) => {
      stderr += b.toString();
    });
    // Interrupt once stage 1 (after the perception stage) has taken a step.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (/stage 1 epoch \d+ step \d+\/\d+/.test(stderr)) {
          clearInterval(timer);
          child.kill('SIGINT');
          resolve();
        }
      }, 50);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.is(code, 130, stderr);
    assert.match(stderr, /saving a checkpoint and stopping/);
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint-stage1', 'state.json'), 'utf8'));
    assert.ok(state.step >= 1 && state.stage === 1, JSON.stringify(state));
    // Resume with a one-epoch schedule: it continues from the saved step and finishes.
    const resumed = run(['train', '--data', data, '--out', out, '--arm', 'sft', '--epochs1', '1', '--epochs2', '1', '--batch', '8', '--perception-steps', '20', '--resume']);
    assert.is(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, /perception weights loaded/);
    assert.match(resumed.stderr, /image-use gate (PASSED|FAILED)/);
    assert.match(resumed.stderr, new RegExp(`resumed stage 1 at step ${state.step}`));
    assert.match(resumed.stdout, /sft: test accuracy \d+\.\d%/);
    assert.ok(fs.existsSync(path.join(out, 'model-sft', 'model.safetensors')), 'final model saved');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
