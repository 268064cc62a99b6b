// Errors raised by the TypeScript layer carry the same `code`s as the native ones.
export type ValrErrorCode =
  | 'ERR_VALR_SHAPE'
  | 'ERR_VALR_DTYPE'
  | 'ERR_VALR_DEVICE'
  | 'ERR_VALR_DISPOSED'
  | 'ERR_VALR_CUDA'
  | 'ERR_VALR_OOM'
  | 'ERR_VALR_ARGUMENT'
  | 'ERR_VALR_RANGE'
  | 'ERR_VALR_NO_BINARY'
  | 'ERR_VALR_DIVERGED'
  | 'ERR_VALR_INTERNAL';

export class ValrError extends Error {
  readonly code: ValrErrorCode;
  constructor(code: ValrErrorCode, message: string) {
    super(message);
    this.name = 'ValrError';
    this.code = code;
  }
}

export function fail(code: ValrErrorCode, message: string): never {
  throw new ValrError(code, message);
}
