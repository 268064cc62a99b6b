// Loading a Hugging Face tokenizer.json whatever its model: byte-level BPE (Qwen2,
// Llama 3, GPT-2 checkpoints) or WordLevel (this package's own data).
import * as fs from 'fs';
import { fail } from '../errors';
import { BpeTokenizer } from './bpe-tokenizer';
import { WordTokenizer } from './tokenizer';

export function loadTokenizerJson(file: string): WordTokenizer | BpeTokenizer {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail('ERR_VALR_ARGUMENT', `${file}: cannot read a tokenizer.json (${(e as Error).message})`);
  }
  return BpeTokenizer.isByteLevelBpe(json) ? BpeTokenizer.fromJSON(json, file) : WordTokenizer.fromHuggingFace(file);
}
