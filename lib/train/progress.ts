// Training progress: one updating line with loss, tokens/s and ETA on a terminal,
// plain lines (every few seconds) otherwise, and every record as JSONL.
import * as fs from 'fs';

export interface StepRecord {
  stage: number;
  arm?: string;
  epoch: number;
  step: number;
  totalSteps: number;
  lr: number;
  loss: number;
  ce: number;
  repa?: number;
  tokensPerSec: number;
  elapsedSec: number;
}

export class Progress {
  readonly #tty: boolean;
  readonly #metrics: fs.WriteStream | null;
  #lastPlain = 0;
  constructor(metricsFile: string | null, readonly label = '', stream: NodeJS.WriteStream = process.stderr) {
    this.#tty = !!stream.isTTY && !process.env.CI;
    this.#metrics = metricsFile ? fs.createWriteStream(metricsFile, { flags: 'a' }) : null;
    this.stream = stream;
  }
  readonly stream: NodeJS.WriteStream;

  step(r: StepRecord): void {
    this.#metrics?.write(JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n');
    const eta = r.step > 0 ? (r.elapsedSec / r.step) * (r.totalSteps - r.step) : 0;
    const line =
      `${this.label}stage ${r.stage} epoch ${r.epoch + 1} step ${r.step}/${r.totalSteps} loss ${r.loss.toFixed(4)}` +
      (r.repa !== undefined ? ` (ce ${r.ce.toFixed(4)}, repa ${r.repa.toFixed(4)})` : '') +
      ` | ${Math.round(r.tokensPerSec)} tok/s | ETA ${formatSeconds(eta)}`;
    if (this.#tty) {
      this.stream.write(`\r\x1b[K${line}`);
      if (r.step === r.totalSteps) this.stream.write('\n');
    } else if (r.elapsedSec - this.#lastPlain >= 5 || r.step === r.totalSteps || r.step === 1) {
      this.#lastPlain = r.elapsedSec;
      this.stream.write(line + '\n');
    }
  }

  note(text: string): void {
    if (this.#tty) this.stream.write('\r\x1b[K');
    this.stream.write(text + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#metrics ? this.#metrics.end(resolve) : resolve()));
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}
