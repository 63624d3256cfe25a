// What a preference may be: its key's shape, its value's type and size, and the keys CyNode itself
// reads, whose values are checked on write (README "Preferences" lists them).
import { badRequest } from '../http/problem';
import { credentialName } from '../redaction/generic';
import type { ValueType } from './store';

/** Lowercase dot-namespaces, at least two segments (README, Preferences): `agents.project_manager.max_steps`. */
export const KEY_PATTERN = '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)+$';
const KEY = new RegExp(KEY_PATTERN);
export const MAX_KEY_LENGTH = 200;
/** Serialized; preferences are settings, not documents. */
export const MAX_VALUE_BYTES = 16 * 1024;

export interface KnownKey {
  description: string;
  default: unknown;
  /** Why the value is refused, or null when it fits. */
  check(value: unknown): string | null;
}

const intIn = (min: number, max: number) => (v: unknown) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? null : `an integer from ${min} to ${max}`);

/**
 * The keys the project-manager agent reads. `agents.project_manager.approval` defaults to `never`: an API client
 * of /v1/chat/completions knows nothing of approvals, and a turn that stops to wait for one would
 * break every unattended caller; a person turns asking on for themselves (user scope) or for a
 * project.
 */
export const KNOWN_KEYS: Readonly<Record<string, KnownKey>> = {
  'agents.project_manager.model.local_default_ollama_model': {
    description: 'The model that backs cynodeai.pm; null lets CyNode choose a served model with tool calling',
    default: null,
    check: (v) => (v === null || (typeof v === 'string' && v.length >= 1 && v.length <= 200) ? null : 'a model name (1 to 200 characters) or null'),
  },
  'agents.project_manager.approval': {
    description: 'never: the agent acts without asking; mutating: it asks before each tool that changes something',
    default: 'never',
    check: (v) => (v === 'never' || v === 'mutating' ? null : '"never" or "mutating"'),
  },
  'agents.project_manager.max_steps': { description: 'Tool-loop steps per agent turn', default: 8, check: intIn(1, 50) },
  'agents.project_manager.max_seconds': { description: 'Seconds an agent turn may take', default: 120, check: intIn(5, 600) },
};

export function valueTypeOf(value: unknown): ValueType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const t = typeof value;
  if (t === 'string' || t === 'number' || t === 'boolean') return t;
  return 'object';
}

/** Why a stored entry cannot take part in folding (it no longer fits its type or its known key), or null. */
export function invalidReason(key: string, value: unknown, valueType: ValueType): string | null {
  // `null` masks lower values whatever the declared type (README, Preferences).
  if (value !== null && valueTypeOf(value) !== valueType) return `value is not of its value_type ${valueType}`;
  const known = KNOWN_KEYS[key];
  const why = known?.check(value);
  return why ? `${key} must be ${why}` : null;
}

/** 400 unless the key is well formed and not named like a credential. */
export function checkKey(key: string): void {
  if (key.length > MAX_KEY_LENGTH || !KEY.test(key)) throw badRequest(`Preference keys are lowercase dot-separated names of at most ${MAX_KEY_LENGTH} characters, such as agents.project_manager.max_steps`);
  // Deployment secrets never live in preferences (README, Preferences): a key named like one is refused.
  if (key.split('.').some((segment) => credentialName(segment) !== null)) throw badRequest('Preferences never hold credentials; this key is named like one. Store secrets in a connector credential');
}

/** 400 unless the value fits its size, its declared type and, for a known key, that key's rule. Returns its type. */
export function checkValue(key: string, value: unknown, declared: ValueType | undefined): ValueType {
  const actual = valueTypeOf(value);
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_VALUE_BYTES) throw badRequest(`A preference value is at most ${MAX_VALUE_BYTES} bytes of JSON`);
  if (declared !== undefined && declared !== actual && value !== null) throw badRequest(`value is ${actual}, not the value_type ${declared} given`);
  const why = KNOWN_KEYS[key]?.check(value);
  if (why) throw badRequest(`${key} must be ${why}`);
  return declared ?? actual;
}

/** The project-manager agent's settings, typed, from an effective fold (PreferenceService.effective). */
export interface AgentPmSettings {
  model: string | null;
  approval: 'never' | 'mutating';
  maxSteps: number;
  maxSeconds: number;
}

export function agentPmSettings(effective: Record<string, unknown>): AgentPmSettings {
  // The fold skips invalid entries and fills defaults, so each value already fits its key.
  const v = (key: string) => (KNOWN_KEYS[key]!.check(effective[key]) === null ? effective[key] : KNOWN_KEYS[key]!.default);
  return {
    model: v('agents.project_manager.model.local_default_ollama_model') as string | null,
    approval: v('agents.project_manager.approval') as AgentPmSettings['approval'],
    maxSteps: v('agents.project_manager.max_steps') as number,
    maxSeconds: v('agents.project_manager.max_seconds') as number,
  };
}
