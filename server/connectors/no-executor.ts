import { HttpProblem } from '../http/problem';
import type { ConnectorExecutor } from './executor-api';

/**
 * The executor handle while no connector executor runs: nothing can be sealed or invoked, and
 * every attempt says so (503) instead of failing somewhere deeper.
 */
export function noExecutor(): ConnectorExecutor {
  const unavailable = () => Promise.reject(new HttpProblem(503, 'The connector executor is not running', { code: 'transient' }));
  return { seal: unavailable, invoke: unavailable, health: unavailable, close: async () => {} };
}
