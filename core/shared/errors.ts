/** File-level problems: the whole file is REJECTED; no queue or task is created. */
export type FileErrorCode =
  | 'EMPTY_FILE'
  | 'NO_DATA_ROWS'
  | 'NOT_CSV'
  | 'UNDECODABLE'
  | 'UNTERMINATED_QUOTE'
  | 'INVALID_QUOTE'
  | 'DUPLICATE_HEADER'
  | 'BLANK_HEADER'
  | 'RECORD_TOO_LARGE'
  | 'FILE_TOO_LARGE';

/** Record-level problems: only that record is rejected and listed in errors.csv. */
/** CHUNK_FAILED: the record's whole chunk failed on every attempt (a poison chunk). */
/**
 * IN_DOUBT: a record of a processor with side effects whose effect may or may not have happened (claimed, no
 * outcome recorded); never tried again. Processors add codes of their own (RecordError, e.g. MAIL_REFUSED).
 */
export type RecordErrorCode =
  'COLUMN_COUNT' | 'NUL_BYTE' | 'PROCESSING_FAILED' | 'CHUNK_FAILED' | 'IN_DOUBT' | (string & {});

export class FileRejectedError extends Error {
  override readonly name = 'FileRejectedError';
  constructor(
    readonly code: FileErrorCode,
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

/** A request the caller got wrong (maps to 4xx). */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
