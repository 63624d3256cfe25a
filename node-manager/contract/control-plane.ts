/**
 * The contract between a Node Manager and the control plane (docs/architecture.md#processes-and-ports): what a
 * node sends when it registers and reports, and what it is given back. Pure schemas and types,
 * shared by both sides; nothing here may import runtime code of either.
 */
import { Type, type Static } from '@sinclair/typebox';

const Open = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: true });
const Opt = Type.Optional;

export const NODE_SLUG_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';

/** node_capability_report_v1: facts about the node; also its heartbeat. Unknown fields are kept. */
export const CapabilityReport = Open({
  version: Type.Literal(1),
  reported_at: Type.String({ format: 'date-time' }),
  node: Open({ node_slug: Type.String({ pattern: NODE_SLUG_PATTERN }), name: Opt(Type.String({ maxLength: 200 })), labels: Opt(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 50 })) }),
  platform: Open({ os: Type.String(), arch: Type.String(), distro: Opt(Type.String()), kernel_version: Opt(Type.String()) }),
  compute: Open({ cpu_cores: Type.Integer({ minimum: 0 }), ram_mb: Type.Integer({ minimum: 0 }), cpu_model: Opt(Type.String()), storage_free_mb: Opt(Type.Integer()) }),
  container_runtime: Opt(Open({ runtime: Type.String(), version: Opt(Type.String()), rootless_enabled: Opt(Type.Boolean()) })),
  gpu: Opt(Open({ present: Type.Boolean(), devices: Opt(Type.Array(Open({}))) })),
  sandbox: Opt(Open({ supported: Type.Boolean(), max_concurrency: Opt(Type.Integer({ minimum: 0 })), reason: Opt(Type.String()) })),
  inference: Opt(Open({ supported: Type.Boolean(), mode: Opt(Type.String()), running: Opt(Type.Boolean()), existing_service: Opt(Type.Boolean()), available_models: Opt(Type.Array(Type.String())) })),
  worker_api: Open({ base_url: Type.String({ pattern: '^https?://', maxLength: 500 }) }),
  running_jobs: Opt(Type.Array(Type.String(), { description: 'job ids running on the node now (extension)' })),
});
export type CapabilityReport = Static<typeof CapabilityReport>;

/**
 * The join key admits a new node; `node_secret` proves an existing one. The node generates the
 * secret on its first start (at least 256 random bits), keeps it in its state directory and sends
 * it with every registration: the first registration of a name records its digest, and only the
 * same secret registers that name again.
 */
export const NODE_SECRET_MIN_LENGTH = 32;
export const RegisterRequest = Type.Object(
  {
    psk: Type.String({ minLength: 1, maxLength: 512 }),
    node_secret: Type.String({ minLength: NODE_SECRET_MIN_LENGTH, maxLength: 512, description: "The node's own secret; registering a name that is taken needs the secret it was first registered with" }),
    capability: CapabilityReport,
  },
  { additionalProperties: false },
);
export type RegisterRequest = Static<typeof RegisterRequest>;

/** node_bootstrap_payload_v1: the node uses these URLs, never hard-coded paths. */
export const BootstrapPayload = Type.Object({
  version: Type.Literal(1),
  issued_at: Type.String(),
  node_id: Type.String(),
  orchestrator: Type.Object({
    base_url: Type.String(),
    endpoints: Type.Object({ worker_registration_url: Type.String(), node_config_url: Type.String(), node_report_url: Type.String() }),
  }),
  auth: Type.Object({ node_jwt: Type.String(), expires_at: Type.String() }),
});
export type BootstrapPayload = Static<typeof BootstrapPayload>;

/** node_configuration_payload_v1. */
export const NodeConfig = Type.Object({
  version: Type.Literal(1),
  config_version: Type.String({ description: 'ULID; compare lexicographically' }),
  issued_at: Type.String(),
  node_slug: Type.String(),
  orchestrator: Type.Object({ base_url: Type.String(), endpoints: Type.Object({ worker_api_target_url: Type.String(), node_report_url: Type.String() }) }),
  policy: Type.Object({ sandbox: Type.Object({ default_network_policy: Type.String(), allowed_network_policies: Type.Array(Type.String()) }) }),
  worker_api: Type.Object({ orchestrator_bearer_token: Type.String() }),
  /**
   * Whether the node should start its own Ollama. Missing or `enabled: false`: it must
   * not start one (it may still use a host Ollama it found). `image` is the container image to
   * run, `variant` what the node's GPUs call for.
   */
  inference_backend: Type.Object({
    enabled: Type.Boolean(),
    image: Type.Optional(Type.String()),
    variant: Type.Optional(Type.Union([Type.Literal('cuda'), Type.Literal('rocm'), Type.Literal('cpu')])),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  }),
  constraints: Type.Object({ max_request_bytes: Type.Integer(), max_job_timeout_seconds: Type.Integer() }),
  /** How often to report (the heartbeat); the control plane marks a node stale after several misses. */
  heartbeat_interval_seconds: Type.Integer({ minimum: 1 }),
});
export type NodeConfig = Static<typeof NodeConfig>;

/** node_config_ack_v1. */
export const ConfigAck = Type.Object(
  {
    version: Type.Literal(1),
    node_slug: Type.String(),
    config_version: Type.String({ minLength: 1, maxLength: 64 }),
    ack_at: Type.String({ format: 'date-time' }),
    status: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
    error: Type.Optional(Type.Object({ type: Type.String({ maxLength: 100 }), message: Type.String({ maxLength: 2000 }), details: Type.Optional(Type.Unknown()) })),
  },
  { additionalProperties: true },
);
export type ConfigAck = Static<typeof ConfigAck>;
