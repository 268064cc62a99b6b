// The published package works with no install script: pack it (with the prebuilt
// binaries), install the tarball into an empty project with --ignore-scripts and no
// compiler on PATH, then load it from CommonJS and ESM and run a kernel.
// Needs `npm run prebuild` first (CI does it); run with `npm run test:package`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const test = suite('npm pack + install --ignore-scripts');

function npmCli(): string {
  if (process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')) return process.env.npm_execpath;
  const npmBin = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  return path.join(path.dirname(npmBin), 'npm-cli.js');
}

test('the tarball installed without scripts or compilers loads its prebuilt binary and computes', () => {
  const platformDir = `${process.platform}-${process.arch}`;
  assert.ok(fs.existsSync(path.join(root, 'prebuilds', platformDir)), `no prebuilds/${platformDir}: run npm run prebuild first`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-pack-'));
  const npm = npmCli();
  const packOut = execFileSync(process.execPath, [npm, 'pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
  const packed = JSON.parse(packOut.slice(packOut.indexOf('[')))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'compiled JS and types are shipped');
  assert.ok(files.some((f) => f.startsWith(`prebuilds/${platformDir}/`) && f.endsWith('.node')), 'CPU prebuild shipped');
  assert.not.ok(files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/')), 'nothing extra');

  const project = path.join(work, 'consumer');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // PATH holds nothing: no cc, c++, make, cmake, python; npm runs from its own script.
  const emptyBin = path.join(work, 'empty-bin');
  fs.mkdirSync(emptyBin);
  const env = { ...process.env, PATH: emptyBin, npm_config_ignore_scripts: 'true' };
  delete (env as Record<string, unknown>).VALR_ADDON_PATH;
  execFileSync(
    process.execPath,
    [npm, 'install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed.filename)],
    { cwd: project, env, stdio: 'pipe' },
  );
  assert.not.ok(fs.existsSync(path.join(project, 'node_modules', 'valr-node', 'build')), 'nothing was built');

  const script = `
    const v = require('valr-node');
    const y = v.kernels.upsampleBilinear(Float32Array.of(0, 1, 2, 3), [1, 2, 2, 1], [4, 4]);
    const r = v.runtime.doctorReport();
    console.log(JSON.stringify({ y: Array.from(y), loaded: r.loaded }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: project, env, encoding: 'utf8' }));
  // Corners of a 2x2 -> 4x4 bilinear upsample (align_corners=False) keep the input values.
  assert.is(out.y.length, 16);
  assert.equal([out.y[0], out.y[3], out.y[12], out.y[15]], [0, 1, 2, 3]);
  assert.is(out.y[1], 0.25);
  assert.match(out.loaded.path, /node_modules[\\/]valr-node[\\/]prebuilds[\\/]/);

  const esm = `import { kernels, Tensor } from 'valr-node';
    const t = Tensor.fromArray(Float32Array.of(1, 2), [2]);
    const r = kernels.repaCosineLoss(Float32Array.of(1, 0), Float32Array.of(2, 0), [1, 1, 2]);
    console.log(JSON.stringify({ loss: r.loss, t: Array.from(t.toArray()) }));`;
  const outEsm = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', esm], { cwd: project, env, encoding: 'utf8' }));
  assert.is(outEsm.loss, -1);
  assert.equal(outEsm.t, [1, 2]);
  fs.rmSync(work, { recursive: true, force: true });
});

test.run();
