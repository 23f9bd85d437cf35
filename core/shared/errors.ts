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
  | 'FILE_TOO_LARGE'
  | 'HEADER_TOO_LARGE'
  /** The header lacks columns the job's processor needs (RowProcessor.needs): no record could succeed. */
  | 'PROCESSOR_FIELDS_MISSING';

/** Record-level problems: only that record is rejected and listed in errors.csv. */
/** CHUNK_FAILED: the record's whole chunk failed on every attempt (a poison chunk). */
/** SOURCE_CHANGED: the bytes of the record's range are not the ones the split validated (the job fails). */
/** COUNTS_DISAGREE: finalize found the record in no result and no error line (the job fails). */
/**
 * ZIP_ENTRY_NAME: the processor named an output the zip must not hold (an absolute path, a `..` segment, a
 * backslash or control character, a name the finalize writes, a name an earlier record of its chunk took).
 */
/**
 * IN_DOUBT: a record of a processor with side effects whose effect may or may not have happened (claimed, no
 * outcome recorded); never tried again. DONE_RESULT_NOT_KEPT: its effect happened, but its result was too large to
 * keep with its claim and cannot be rebuilt (a redelivered, given-up or stopped chunk); never tried again.
 * Processors add codes of their own (RecordError, e.g. MAIL_REFUSED).
 */
export type RecordErrorCode =
  | 'COLUMN_COUNT'
  | 'NUL_BYTE'
  | 'PROCESSING_FAILED'
  | 'CHUNK_FAILED'
  | 'SOURCE_CHANGED'
  | 'COUNTS_DISAGREE'
  | 'ZIP_ENTRY_NAME'
  | 'IN_DOUBT'
  | 'DONE_RESULT_NOT_KEPT'
  | (string & {});

/**
 * An error the API answers with its own HTTP status and a JSON body of its code and message (and line, for a
 * file's problem): lambdas/shared/http.ts reads them, so a new kind of refusal is one class here, with no mapping
 * to add. Anything that is not one of these is a 500 whose details go to the log only.
 */
export abstract class HttpError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** The line of the upload the problem is on, when it has one. */
  declare readonly line?: number;
  /** What the error names, as fields of the answer's `error` beside code and message (e.g. a 422's columns). */
  declare readonly details?: Readonly<Record<string, unknown>>;
}

/** The file as a whole is refused (422): nothing is created for it. */
export class FileRejectedError extends HttpError {
  override readonly name = 'FileRejectedError';
  readonly status = 422;
  constructor(
    override readonly code: FileErrorCode,
    message: string,
    override readonly line?: number,
  ) {
    super(message);
  }
}

/** A request the caller got wrong (maps to 4xx). */
export class BadRequestError extends HttpError {
  override readonly name = 'BadRequestError';
  constructor(
    override readonly code: string,
    message: string,
    override readonly status = 400,
    /** What the error names, as fields of the answer's `error` beside code and message (e.g. a 422's columns). */
    override readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

/** An unknown job, route or object (404). */
export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError';
  readonly status = 404;
  readonly code = 'NOT_FOUND';
}

/**
 * Not an HTTP error (the worker's, never an API answer). The bytes a chunk names are not the ones the split validated: the object changed (S3 answered 412 to the
 * pinned ETag), or the worker's parse of the range disagrees with the split's. Never retried into a result.
 */
export class SourceChangedError extends Error {
  override readonly name = 'SourceChangedError';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
