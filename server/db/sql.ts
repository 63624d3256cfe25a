/**
 * A parameterised WHERE clause built from optional filters: each `?` in a condition becomes
 * the next `$n`, so values never enter the SQL text.
 */
export class Conditions {
  readonly params: unknown[];
  private readonly clauses: string[] = [];

  /** `params`: values already numbered $1.. by the caller's fixed conditions. */
  constructor(params: unknown[] = [], clauses: string[] = []) {
    this.params = [...params];
    this.clauses = [...clauses];
  }

  /** A condition without a value. */
  raw(clause: string): this {
    this.clauses.push(clause);
    return this;
  }

  /** A condition on one value; every `?` in it stands for that value. */
  add(clause: string, value: unknown): this {
    const placeholder = this.param(value);
    this.clauses.push(clause.replaceAll('?', placeholder));
    return this;
  }

  /** Appends a value (a LIMIT, say) and returns its placeholder. */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  /** `WHERE a AND b`, or nothing when there are no conditions. */
  where(): string {
    return this.clauses.length > 0 ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}
