/**
 * A refusal of the domain model: the change is not made and the text is what
 * the client reads. Its own module so that the model's parts (ldm.ts, iov.ts)
 * share it without importing each other.
 */
import { ErrorCodes, LdmError } from '../errors.ts';

export class ModelError extends LdmError {
  constructor(message: string) {
    super(ErrorCodes.REFUSED, message);
    this.name = 'ModelError';
  }
}

export const refuse = (message: string): never => {
  throw new ModelError(message);
};
