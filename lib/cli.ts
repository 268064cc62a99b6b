#!/usr/bin/env node
// The `valr` command line.
import { doctorReport } from './runtime';

const HELP: Record<string, string> = {
  main: `Usage: valr <command> [options]

Commands:
  doctor     Show which native binary loaded and why, the CUDA devices, versions and threads
  bench      Run the kernel benchmarks (same as npm run bench:kernels in a clone)
  demo       The end-to-end VaLR demo (not available yet: needs the model and training pipeline)

Run 'valr <command> --help' for a command's options.`,
  doctor: `Usage: valr doctor [--json]

Prints what loaded and why (CPU or CUDA binary), the probe of the CUDA binary
(driver and runtime versions, devices, compute capability, compiled architectures)
and the CPU thread count. Environment: VALR_DEVICE=cpu|cuda|auto, VALR_NUM_THREADS,
CUDA_VISIBLE_DEVICES.`,
  bench: `Usage: valr bench [--quick]

Runs bench/kernels.bench.ts from a clone of the repository (needs tsx).`,
  demo: `Usage: valr demo

The end-to-end demo (data, stage-1 SFT, stage-2 VaLR training, evaluation) needs
the model graph and training pipeline, which are not in this version yet.`,
};

function printDoctor(json: boolean): void {
  const r = doctorReport() as Record<string, any>;
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  const lines = [
    `valr-node ${r.package}  (Node ${r.node}, N-API ${r.napi}, ${r.platform})`,
    `loaded:     ${r.loaded.variant} binary  ${r.loaded.path}`,
    `reason:     ${r.loaded.reason}`,
    `mode:       VALR_DEVICE=${r.env.VALR_DEVICE ?? '(unset: auto)'}`,
    `binaries:   cpu=${r.binaries.cpu ?? 'none'}`,
    `            cuda=${r.binaries.cuda ?? 'none'}`,
    `cuda:       ${r.cuda.status}: ${r.cuda.message}`,
    `            runtime ${r.cuda.runtime ?? '-'}, driver ${r.cuda.driver ?? '-'}, kernels for ${r.cuda.architectures ?? '-'}`,
    ...r.cuda.devices.map(
      (d: any) => `  device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiProcessors} SMs`,
    ),
    `cpu:        ${r.cpu}`,
    `threads:    ${r.threads}${r.env.VALR_NUM_THREADS ? ` (VALR_NUM_THREADS=${r.env.VALR_NUM_THREADS})` : ''}`,
  ];
  console.log(lines.join('\n'));
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP.main);
    return 0;
  }
  if (!(cmd in HELP) || cmd === 'main') {
    console.error(`valr: unknown command '${cmd}'\n\n${HELP.main}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP[cmd]);
    return 0;
  }
  switch (cmd) {
    case 'doctor':
      printDoctor(rest.includes('--json'));
      return 0;
    case 'bench': {
      const { spawnSync } = require('child_process') as typeof import('child_process');
      const path = require('path') as typeof import('path');
      const fs = require('fs') as typeof import('fs');
      const script = path.join(__dirname, '..', 'bench', 'kernels.bench.ts');
      if (!fs.existsSync(script)) {
        console.error('valr bench: the benchmarks ship with the repository, not the npm package; clone it and run npm run bench:kernels');
        return 1;
      }
      const r = spawnSync('npx', ['tsx', script, ...rest], { stdio: 'inherit' });
      return r.status ?? 1;
    }
    case 'demo':
      console.error(HELP.demo);
      return 1;
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  const err = e as Error & { code?: string };
  console.error(`valr: ${err.code ? `[${err.code}] ` : ''}${err.message}`);
  process.exitCode = 1;
}
