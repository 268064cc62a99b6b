// Choosing and loading the native binary; classifying CUDA failures.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { classifyCudaProbe } from '../lib/native/cuda-status';
import type { CudaProbe } from '../lib/native/binding';
import { findCudaBinary } from '../lib/native/loader';

const root = path.join(__dirname, '..');
const base: CudaProbe = {
  built: true, runtimeVersion: 13000, driverVersion: 13000, deviceCount: 1, errorCode: 0, errorName: '', errorString: '',
  launchErrorCode: 0, launchErrorName: '', launchErrorString: '', compiledArchitectures: 'sm_80 sm_86 sm_89 sm_90',
  devices: [{ index: 0, name: 'NVIDIA H100', computeCapability: '9.0', totalMemory: 80e9, multiProcessors: 132 }],
};

const classify = suite('CUDA probe classification');

classify('a working device', () => {
  const s = classifyCudaProbe(base);
  assert.is(s.kind, 'ok');
  assert.match(s.message, /NVIDIA H100 \(sm_90\)/);
});
classify('no driver: libcuda missing', () => {
  const s = classifyCudaProbe({ ...base, driverVersion: 0, deviceCount: 0, errorCode: 35 });
  assert.is(s.kind, 'no-driver');
  assert.match(s.message, /no NVIDIA driver/);
});
classify('driver too old, with both versions', () => {
  const s = classifyCudaProbe({ ...base, driverVersion: 12040, deviceCount: 0, errorCode: 35 });
  assert.is(s.kind, 'driver-too-old');
  assert.match(s.message, /supports CUDA 12\.4 but this binary was built with CUDA 13\.0/);
});
classify('no device', () => {
  assert.is(classifyCudaProbe({ ...base, deviceCount: 0, errorCode: 100, devices: [] }).kind, 'no-device');
});
classify('no kernel image for this GPU, with the build command', () => {
  const s = classifyCudaProbe({
    ...base, launchErrorCode: 209,
    devices: [{ index: 0, name: 'Tesla V100', computeCapability: '7.0', totalMemory: 16e9, multiProcessors: 80 }],
  });
  assert.is(s.kind, 'no-kernel-image');
  assert.match(s.message, /Tesla V100 \(compute capability 7\.0\).*CMAKE_CUDA_ARCHITECTURES=70/);
});
classify('a CPU-only binary', () => {
  assert.is(classifyCudaProbe({ ...base, built: false }).kind, 'no-binary');
});
classify.run();

const load = suite('loader in fresh processes');

function doctor(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'lib', 'cli.ts'), 'doctor', '--json'], {
    cwd: root, env: { ...process.env, ...env }, encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

load('VALR_DEVICE=cpu loads the CPU path quietly', () => {
  const r = doctor({ VALR_DEVICE: 'cpu' });
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.is(j.loaded.variant, 'cpu');
  assert.is(j.loaded.reason, 'VALR_DEVICE=cpu');
  assert.not.match(r.stderr, /Warning/);
});
load('CUDA_VISIBLE_DEVICES="" is honoured', () => {
  const j = JSON.parse(doctor({ CUDA_VISIBLE_DEVICES: '' }).stdout);
  assert.is(j.loaded.variant, 'cpu');
  assert.match(j.loaded.reason, /CUDA_VISIBLE_DEVICES/);
});
load('an invalid VALR_DEVICE is a clear error', () => {
  const r = doctor({ VALR_DEVICE: 'tpu' });
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /ERR_VALR_DEVICE.*VALR_DEVICE must be 'cpu', 'cuda' or 'auto', got 'tpu'/);
});

const cudaBinary = findCudaBinary();
if (cudaBinary && !fs.existsSync('/dev/nvidiactl')) {
  load('on this GPU-less host the CUDA binary loads, reports why CUDA is unavailable, and auto runs on CPU', () => {
    const r = doctor({});
    assert.is(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.is(j.loaded.variant, 'cpu');
    assert.is(j.cuda.status, 'no-driver');
    assert.is(j.cuda.runtime, '13.0');
    assert.match(j.cuda.architectures, /sm_80 sm_86 sm_89 sm_90/);
    assert.not.match(r.stderr, /Warning/, 'CPU-only hosts stay quiet');
    const forced = doctor({ VALR_DEVICE: 'cuda' });
    assert.is.not(forced.status, 0);
    assert.match(forced.stderr, /VALR_DEVICE=cuda but CUDA is unavailable: no NVIDIA driver/);
  });
  load('the CUDA binary links neither libcuda nor libcudart', () => {
    let out = '';
    try {
      out = execFileSync('readelf', ['-d', cudaBinary], { encoding: 'utf8' });
    } catch {
      return; // no binutils: nothing to inspect with
    }
    const needed = out.split('\n').filter((l) => l.includes('NEEDED'));
    assert.ok(needed.length > 0, 'readelf lists NEEDED entries');
    assert.not.ok(needed.some((l) => /libcuda|libcudart/.test(l)), needed.join('\n'));
  });
}
load.run();
