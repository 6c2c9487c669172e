import { ErrorCode, FlotillaError } from '@flotilla/shared';

/**
 * A render failure of one environment or cluster. The message names the repository path
 * (and line) at fault and never quotes file content, so it is safe to show in fleet status
 * even when the file holds a Secret.
 */
export class RenderError extends FlotillaError {
  readonly file: string;
  readonly line?: number;
  constructor(file: string, message: string, options?: { line?: number; cause?: unknown }) {
    super(ErrorCode.Render, `${file}${options?.line ? `:${options.line}` : ''}: ${message}`, options);
    this.name = 'RenderError';
    this.file = file;
    this.line = options?.line;
  }
}
