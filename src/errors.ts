/**
 * An error caused by the user's input or environment (a bad file, a wrong option, a missing tensor).
 * The CLI prints its message on one line and exits 1, with no stack trace; anything else is a bug.
 */
export class AhaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AhaError';
  }
}
