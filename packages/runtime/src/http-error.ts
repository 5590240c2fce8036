/**
 * An HTTP answer other than the error kinds' defaults (PermanentError 400, GoneError 404, else 500):
 * {@link createHttpServer}'s one error handler sends `statusCode` with `{ error: message }`.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpError';
  }
}
