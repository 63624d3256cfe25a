/**
 * A run's status: the one list every part of the gateway (routes, stores, SQL, streams) uses, so
 * a new status is added here and nowhere else.
 */
export const RUN_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'canceled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** A run in one of these has ended: its status never changes again. */
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['completed', 'failed', 'canceled']);
export const isTerminal = (s: RunStatus) => TERMINAL_STATUSES.has(s);

/** The terminal statuses as an SQL list, for `status IN (...)`. */
export const TERMINAL_STATUSES_SQL = [...TERMINAL_STATUSES].map((s) => `'${s}'`).join(', ');
